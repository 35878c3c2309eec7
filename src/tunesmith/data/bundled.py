"""The demo datasets, taken from the bigbench 1.0.0 PyPI sdist (their text is never committed).

- `bundled:intent-recognition`: BIG-bench `intent_recognition` (693 utterances, 7 intents); the default data.
- `bundled:review-topics`: the English MultiEmo reviews (8,215 texts), labelled by their domain: `hotels`,
  `medicine`, `products` or `university` (a clean topic label: it is the source the review was collected from).

`make data` downloads the sdist and prepares the default one; any of them is prepared on first use:

    pip download --no-deps bigbench==1.0.0 -d "$TUNESMITH_CACHE/downloads"
    python -m tunesmith.data.bundled --sdist "$TUNESMITH_CACHE/downloads/bigbench-1.0.0.tar.gz" [--dataset NAME]

Only the needed `task.json` members are read from the 358 MB archive (streamed, nothing extracted to disk), each
after `core/safe_archive.check_tar_member` finds it a regular file with a safe relative path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tunesmith.config.schema import BUNDLED_DATA
from tunesmith.core.errors import TunesmithError, UnsafeArchiveError
from tunesmith.core.paths import tunesmith_cache_dir
from tunesmith.core.registry import Registry
from tunesmith.core.safe_archive import check_tar_member

BUNDLED_PREFIX = "bundled:"
SDIST_NAME = "bigbench-1.0.0.tar.gz"
TASKS_FOLDER = ("bigbench", "benchmark_tasks")
INTENT_MEMBER_SUFFIX = (*TASKS_FOLDER, "intent_recognition", "task.json")
UTTERANCE_PREFIX = "Utterance: "
# MultiEmo domain (member folder prefix) -> topic label; MultiEmo's "reviews" domain is university course reviews
REVIEW_TOPICS = {"hotels": "hotels", "medicine": "medicine", "products": "products", "reviews": "university"}

MemberSuffix = tuple[str, ...]
"""A member's path without its leading folders, e.g. ("bigbench", "benchmark_tasks", "x", "task.json")."""


def task_member(task: str) -> MemberSuffix:
    """The member suffix of a BIG-bench task's `task.json`, e.g. `task_member("multiemo/hotels_text_en")`."""
    return (*TASKS_FOLDER, *task.split("/"), "task.json")


@dataclass(frozen=True)
class BundledDataset:
    """A demo dataset prepared into the cache from a downloaded archive."""

    name: str
    cache_file: str
    """File name under `<cache>/data/`."""
    sdist_name: str
    """Archive expected under `<cache>/downloads/`."""
    fetch_command: str
    """What the user runs to download and prepare it."""
    extract: Callable[[Path, Path], int]
    """(archive, output JSONL) -> rows written."""


BUNDLED_DATASETS: Registry[BundledDataset] = Registry("bundled dataset")


def resolve_data_source(spec: str) -> Path:
    """The local file a `data.train_file`/`eval_file` value stands for; prepares bundled data on first use."""
    if not spec.startswith(BUNDLED_PREFIX):
        return Path(spec).expanduser()
    dataset = BUNDLED_DATASETS.get(spec.removeprefix(BUNDLED_PREFIX))
    cache = tunesmith_cache_dir()
    target = cache / "data" / dataset.cache_file
    if target.is_file():
        return target
    sdist = cache / "downloads" / dataset.sdist_name
    if sdist.is_file():
        dataset.extract(sdist, target)
        return target
    raise TunesmithError(
        f"the demo dataset {spec} is not prepared: neither {target} nor {sdist} exists.\n"
        f"  fix: run `{dataset.fetch_command}` (it runs "
        f"`pip download --no-deps bigbench==1.0.0 -d {sdist.parent}` and extracts the data), "
        "or set data.train_file to your own file."
    )


def extract_intent_recognition(sdist: Path, out_jsonl: Path) -> int:
    """Write `{"text", "label"}` JSONL rows from the sdist's intent_recognition task; returns the row count."""
    sdist, out_jsonl = Path(sdist), Path(out_jsonl)
    if not sdist.is_file():
        raise TunesmithError(f"{sdist} not found.\n  fix: run `make data` to download the bigbench sdist")
    task = json.loads(read_task_members(sdist, [INTENT_MEMBER_SUFFIX])[INTENT_MEMBER_SUFFIX])
    return _write_rows(_intent_rows(task, sdist), out_jsonl)


def extract_review_topics(sdist: Path, out_jsonl: Path) -> int:
    """Write `{"text", "label"}` JSONL rows, label = topic, from the sdist's English MultiEmo review texts."""
    sdist, out_jsonl = Path(sdist), Path(out_jsonl)
    if not sdist.is_file():
        raise TunesmithError(f"{sdist} not found.\n  fix: run `make data` to download the bigbench sdist")
    members = {domain: task_member(f"multiemo/{domain}_text_en") for domain in REVIEW_TOPICS}
    found = read_task_members(sdist, list(members.values()))
    rows = []
    for domain, topic in REVIEW_TOPICS.items():
        rows += [{"text": text, "label": topic} for text in _task_inputs(json.loads(found[members[domain]]), sdist)]
    return _write_rows(rows, out_jsonl)


def _write_rows(rows: list[dict[str, str]], out_jsonl: Path) -> int:
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target then rename, so an interrupted run never leaves a half-written cache file.
    tmp = out_jsonl.with_name(f".{out_jsonl.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, out_jsonl)
    finally:
        tmp.unlink(missing_ok=True)
    return len(rows)


def _matching_suffix(name: str, wanted: Sequence[MemberSuffix]) -> MemberSuffix | None:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    # Any leading folders match (normally just "bigbench-1.0.0"), so a crafted "../" path is seen and refused.
    for suffix in wanted:
        if len(parts) > len(suffix) and parts[-len(suffix) :] == suffix:
            return suffix
    return None


def read_task_members(sdist: Path, wanted: Sequence[MemberSuffix]) -> dict[MemberSuffix, bytes]:
    """The bytes of each wanted member, read in one pass over the stream; stops once all are found."""
    found: dict[MemberSuffix, bytes] = {}
    try:
        with tarfile.open(sdist, mode="r:gz") as archive:
            for member in archive:
                suffix = _matching_suffix(member.name, wanted)
                if suffix is None or suffix in found:
                    continue
                check_tar_member(member, sdist, fix="delete the file and download it again with `make data`")
                if not member.isfile():
                    raise UnsafeArchiveError(f"{sdist}: refusing archive member {member.name!r} (a folder where "
                                             "a file is expected).\n  fix: download it again with `make data`")
                handle = archive.extractfile(member)
                if handle is not None:
                    found[suffix] = handle.read()
                if len(found) == len(set(wanted)):
                    return found
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TunesmithError(
            f"{sdist}: cannot read the archive ({exc}).\n  fix: re-download it with `make data`"
        ) from exc
    missing = ", ".join("/".join(("<root>", *s)) for s in wanted if s not in found)
    raise TunesmithError(f"{sdist}: no member {missing}.\n  fix: download bigbench==1.0.0 with `make data`")


def _intent_rows(task: object, sdist: Path) -> list[dict[str, str]]:
    examples = task.get("examples") if isinstance(task, dict) else None
    if not isinstance(examples, list) or not examples:
        raise TunesmithError(f"{sdist}: intent_recognition/task.json has no 'examples' list")
    rows = []
    for number, example in enumerate(examples, start=1):
        scores = example.get("target_scores") if isinstance(example, dict) else None
        text = example.get("input") if isinstance(example, dict) else None
        winners = [label for label, score in (scores or {}).items() if score == 1]
        if not isinstance(text, str) or len(winners) != 1:
            raise TunesmithError(
                f"{sdist}: intent_recognition example {number} is not an utterance with exactly one "
                "intent scored 1"
            )
        rows.append({"text": text.removeprefix(UTTERANCE_PREFIX).strip(), "label": winners[0]})
    return rows


def _task_inputs(task: object, sdist: Path) -> list[str]:
    """Every example's non-empty `input` text, stripped (the English reviews hold one empty input, skipped); an
    example without a string input is an error (a damaged archive)."""
    examples = task.get("examples") if isinstance(task, dict) else None
    if not isinstance(examples, list) or not examples:
        raise TunesmithError(f"{sdist}: a MultiEmo task.json has no 'examples' list")
    texts = [example.get("input") if isinstance(example, dict) else None for example in examples]
    if not all(isinstance(text, str) for text in texts):
        raise TunesmithError(f"{sdist}: a MultiEmo example has no input text")
    return [str(text).strip() for text in texts if str(text).strip()]


def _register(name: str, cache_file: str, extract: Callable[[Path, Path], int]) -> None:
    BUNDLED_DATASETS.register(name)(BundledDataset(name, cache_file, SDIST_NAME, "make data", extract))


_register(BUNDLED_DATA.removeprefix(BUNDLED_PREFIX), "intent_recognition.jsonl", extract_intent_recognition)
_register("review-topics", "review_topics.jsonl", extract_review_topics)


def main(argv: list[str] | None = None) -> int:
    """`python -m tunesmith.data.bundled --sdist PATH [--dataset NAME] [--out PATH]`: prepare a demo dataset."""
    parser = argparse.ArgumentParser(prog="python -m tunesmith.data.bundled", description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, required=True, help=f"path to the downloaded {SDIST_NAME}")
    default_name = BUNDLED_DATA.removeprefix(BUNDLED_PREFIX)
    parser.add_argument("--dataset", choices=BUNDLED_DATASETS.names(), default=default_name,
                        help=f"which demo dataset (default: {default_name})")
    parser.add_argument("--out", type=Path, help="JSONL to write (default: <cache>/data/<the dataset's file>)")
    args = parser.parse_args(argv)
    dataset = BUNDLED_DATASETS.get(args.dataset)
    out = args.out or tunesmith_cache_dir() / "data" / dataset.cache_file
    try:
        count = dataset.extract(args.sdist, out)
    except TunesmithError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} records to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
