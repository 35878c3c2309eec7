"""The demo dataset: extraction from a fake bigbench sdist (same layout), path checks, cache resolution."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from tunesmith.config.schema import BUNDLED_DATA
from tunesmith.core.errors import TunesmithError
from tunesmith.core.paths import tunesmith_cache_dir
from tunesmith.data.bundled import extract_intent_recognition, main, resolve_data_source
from tunesmith.data.formats import parse_records
from tunesmith.data.io import read_raw_records

MEMBER = "bigbench-1.0.0/bigbench/benchmark_tasks/intent_recognition/task.json"
LABELS = ("add_to_playlist", "get_weather", "play_music")
TASK = {
    "name": "intent_recognition",
    "examples": [
        {"input": f"Utterance: sentence {i}", "target_scores": {lab: int(lab == LABELS[i % 3]) for lab in LABELS}}
        for i in range(6)
    ],
}


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def _fake_sdist(path: Path, member: str = MEMBER, task: dict = TASK) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        _add(archive, "bigbench-1.0.0/setup.py", b"# not read\n")
        _add(archive, member, json.dumps(task).encode())
    return path


def test_extract_writes_text_and_label_rows(tmp_path: Path) -> None:
    out = tmp_path / "out" / "intent.jsonl"
    count = extract_intent_recognition(_fake_sdist(tmp_path / "bb.tar.gz"), out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert count == 6 == len(rows)
    assert rows[0] == {"text": "sentence 0", "label": "add_to_playlist"}
    assert rows[4] == {"text": "sentence 4", "label": "get_weather"}
    assert sorted(p.name for p in out.parent.iterdir()) == ["intent.jsonl"]  # no temp file left behind
    records = parse_records(read_raw_records(out))
    assert {r.label for r in records} == set(LABELS)  # type: ignore[union-attr]


def test_path_traversal_member_is_refused(tmp_path: Path) -> None:
    evil = "../bigbench/benchmark_tasks/intent_recognition/task.json"
    sdist = _fake_sdist(tmp_path / "evil.tar.gz", member=evil)
    out = tmp_path / "out" / "intent.jsonl"
    with pytest.raises(TunesmithError, match="refusing archive member"):
        extract_intent_recognition(sdist, out)
    assert not out.exists()
    assert not (tmp_path.parent / "bigbench").exists()


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    sdist = tmp_path / "link.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        info = tarfile.TarInfo(MEMBER)
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        archive.addfile(info)
    with pytest.raises(TunesmithError, match="refusing archive member"):
        extract_intent_recognition(sdist, tmp_path / "out.jsonl")


def test_missing_member_and_bad_scores_are_errors(tmp_path: Path) -> None:
    wrong_place = _fake_sdist(tmp_path / "a.tar.gz", member="bigbench-1.0.0/other/task.json")
    with pytest.raises(TunesmithError, match="no member"):
        extract_intent_recognition(wrong_place, tmp_path / "a.jsonl")
    two_winners = {"examples": [{"input": "Utterance: x", "target_scores": {"a": 1, "b": 1}}]}
    with pytest.raises(TunesmithError, match="exactly one intent"):
        extract_intent_recognition(_fake_sdist(tmp_path / "b.tar.gz", task=two_winners), tmp_path / "b.jsonl")


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "c"))
    assert tunesmith_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TUNESMITH_CACHE")
    assert tunesmith_cache_dir() == Path.home() / ".cache" / "tunesmith"


def test_resolve_prepares_from_downloaded_sdist_then_uses_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path))
    (tmp_path / "downloads").mkdir()
    sdist = _fake_sdist(tmp_path / "downloads" / "bigbench-1.0.0.tar.gz")
    path = resolve_data_source(BUNDLED_DATA)
    assert path == tmp_path / "data" / "intent_recognition.jsonl"
    assert len(path.read_text().splitlines()) == 6
    sdist.unlink()  # the prepared file is reused; the archive is no longer needed
    assert resolve_data_source(BUNDLED_DATA) == path


def test_resolve_without_data_says_how_to_fetch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path))
    with pytest.raises(TunesmithError, match="make data") as info:
        resolve_data_source(BUNDLED_DATA)
    assert "pip download --no-deps bigbench==1.0.0" in str(info.value)


def test_resolve_unknown_bundled_name_lists_known() -> None:
    with pytest.raises(TunesmithError, match="intent-recognition"):
        resolve_data_source("bundled:intent-recognitoin")


def test_resolve_plain_path_is_unchanged(tmp_path: Path) -> None:
    assert resolve_data_source(str(tmp_path / "x.jsonl")) == tmp_path / "x.jsonl"


def test_module_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.jsonl"
    assert main(["--sdist", str(_fake_sdist(tmp_path / "s.tar.gz")), "--out", str(out)]) == 0
    assert "wrote 6 records" in capsys.readouterr().out
    assert main(["--sdist", str(tmp_path / "missing.tar.gz"), "--out", str(out)]) == 2
    assert "make data" in capsys.readouterr().err


def test_review_topics_reads_the_four_domains_in_one_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path))
    (tmp_path / "downloads").mkdir()
    with tarfile.open(tmp_path / "downloads" / "bigbench-1.0.0.tar.gz", "w:gz") as archive:
        for domain in ("hotels", "medicine", "products", "reviews"):
            task = {"examples": [{"input": f" {domain} review {i} ", "target_scores": {"neutral": 1}} for i in (0, 1)]}
            _add(archive, f"bigbench-1.0.0/bigbench/benchmark_tasks/multiemo/{domain}_text_en/task.json",
                 json.dumps(task).encode())
            _add(archive, f"bigbench-1.0.0/bigbench/benchmark_tasks/multiemo/{domain}_text_pl/task.json", b"{}")
    path = resolve_data_source("bundled:review-topics")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert path.name == "review_topics.jsonl" and len(rows) == 8
    assert rows[0] == {"text": "hotels review 0", "label": "hotels"}
    assert rows[-1] == {"text": "reviews review 1", "label": "university"}  # MultiEmo's "reviews" are of courses
    assert {r["label"] for r in rows} == {"hotels", "medicine", "products", "university"}


def test_review_topics_names_every_missing_member(tmp_path: Path) -> None:
    from tunesmith.data.bundled import extract_review_topics

    with pytest.raises(TunesmithError, match="no member .*hotels_text_en.*reviews_text_en"):
        extract_review_topics(_fake_sdist(tmp_path / "s.tar.gz"), tmp_path / "o.jsonl")
