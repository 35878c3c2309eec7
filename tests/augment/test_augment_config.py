"""The `augment:` config: defaults, nested overrides, every field documented, bad values all reported at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.cli.main import main
from tunesmith.config import load_config
from tunesmith.config.augment_schema import AugmentConfig
from tunesmith.config.docs import missing_docs
from tunesmith.config.template import render_template
from tunesmith.core.errors import ConfigError


def test_defaults_are_off_and_nested_overrides_work(tmp_path: Path) -> None:
    cfg = load_config(None, ["--augment.synonym.probability=0.2", "--augment.roles=[user,assistant]"])
    assert cfg.augment.enabled is False and cfg.augment.synonym.probability == pytest.approx(0.2)
    assert cfg.augment.roles == ["user", "assistant"]
    path = tmp_path / "run.yaml"
    path.write_text("augment:\n  per_label_target: 50\n  char_noise:\n    enabled: true\n    kinds: [drop, double]\n")
    cfg = load_config(path)
    assert cfg.augment.per_label_target == 50 and cfg.augment.char_noise.kinds == ["drop", "double"]
    assert missing_docs(AugmentConfig) == []
    template = render_template()
    assert "augment:" in template and "    probability: 1.0" in template


def test_every_bad_value_is_reported_at_once() -> None:
    overrides = [
        "--augment.multiplier=0.5",
        "--augment.synonym.rate=1.5",
        "--augment.swap.copies=0",
        "--augment.insert.probability=2",
        "--augment.roles=[usr]",
        "--augment.char_noise.kinds=[smudge]",
        "--augment.back_translation.enabled=true",
        "--augment.synthetic.prompt=write one",
        "--augment.quality.near_duplicate_augmenters=[paraphrse]",
        "--augment.paraphrase.temperature=-1",
        "--augment.synonym.pos=spacey",
        "--augment.quality.vet_skip=[dedupe]",  # a misspelt filter name, not a crash mid-run
    ]
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    wheres = {p.where for p in info.value.problems}
    assert wheres == {
        "augment.multiplier",
        "augment.synonym.rate",
        "augment.swap.copies",
        "augment.insert.probability",
        "augment.roles",
        "augment.char_noise.kinds",
        "augment.back_translation.forward_model",
        "augment.synthetic.prompt",
        "augment.quality.near_duplicate_augmenters",
        "augment.paraphrase.temperature",
        "augment.synonym.pos",
        "augment.quality.vet_skip",
    }
    assert "set augment.back_translation.forward_model" in str(info.value)


def test_cli_augment_writes_records_provenance_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.jsonl"
    rows = [
        {"text": f"please play track number {i} from the {c} jazz album now", "label": "music"}
        for i, c in enumerate(["red", "blue", "green", "gold", "grey", "pink", "teal", "navy"])
    ]
    rows += [
        {"text": f"what will the weather be like in {c} city on day {i}", "label": "weather"}
        for i, c in enumerate(["north", "south", "east", "west", "old", "new", "upper", "lower"])
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    args = [
        "augment",
        "--out",
        str(out),
        f"--data.train_file={data}",
        "--vet.enabled=false",
        "--augment.quality.language=null",
        "--data.test_fraction=0.25",
        "--data.val_fraction=0",
    ]
    assert main(args) == 0
    augmented = [json.loads(line) for line in (out / "augmented.jsonl").read_text().splitlines()]
    provenance = [json.loads(line) for line in (out / "augment_provenance.jsonl").read_text().splitlines()]
    report = json.loads((out / "augment_report.json").read_text())
    assert len(augmented) == len(provenance) == report["added"] == report["records_in"] == 12
    assert [p["line"] for p in provenance] == list(range(1, 13))
    assert all(set(row) == {"text", "label"} for row in augmented)
    assert "data augmentation" in capsys.readouterr().out
    assert main(["augment", "--augment.swap.rate=0"]) == 2  # bad config: exit 2, before any work
