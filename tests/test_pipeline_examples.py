"""The domain configs in examples/: each loads and validates, and the clinic one runs end to end on the tiny model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tunesmith.config import load_config
from tunesmith.recipes.pipeline import run_pipeline

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONFIGS = sorted(EXAMPLES.glob("*.yaml"))


def test_there_are_domain_examples() -> None:
    assert {p.stem for p in CONFIGS} >= {"support_intents", "review_topics", "clinic_triage"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_each_example_loads_validates_and_explains_itself(path: Path) -> None:
    cfg = load_config(path)  # types, choices and cross-field rules; raises ConfigError on any problem
    text = path.read_text()
    assert text.startswith("# ") and f"tunesmith run examples/{path.name}" in text
    assert cfg.model.source == "bundled:smollm2-135m-instruct"  # the bundled model, no hub download
    if not cfg.data.train_file.startswith("bundled:"):
        assert (EXAMPLES.parent / cfg.data.train_file).is_file()  # committed data, relative to the repo root


def test_the_clinic_data_is_the_generators_output() -> None:
    """The committed file is exactly what the seeded generator writes (so it can be checked and regenerated)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_clinic", EXAMPLES / "data" / "make_clinic_messages.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = "".join(json.dumps(row) + "\n" for row in module.make_rows())
    assert (EXAMPLES / "data" / "clinic_messages.jsonl").read_text() == expected


@pytest.mark.integration
def test_clinic_example_runs_end_to_end(tmp_path: Path, tiny_model_dir: Path, monkeypatch) -> None:
    monkeypatch.chdir(EXAMPLES.parent)  # the example names its data relative to the repo root
    cfg = load_config(EXAMPLES / "clinic_triage.yaml", [
        f"--model.source={tiny_model_dir}", f"--run.output_dir={tmp_path}", "--model.device=cpu",
        "--model.num_threads=1", "--train.max_steps=6", "--encode.max_seq_length=400",  # byte-level tiny tokenizer
        "--eval.bootstrap_samples=100",
    ])
    result = run_pipeline(cfg, tmp_path / "clinic")
    statuses = result.statuses()
    assert [n for n, s in statuses.items() if s == "done"] == ["inspect", "split", "vet", "train", "evaluate",
                                                               "export"]
    run = result.run_dir
    for name in ("data_report.json", "train_report.json", "eval_report.json", "report.html", "export",
                 "vet/vet_report.json"):
        assert (run / name).exists(), name
    # the synthetic identities were pseudonymised before training: no original e-mail address reaches kept.jsonl
    emails = set(re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", (EXAMPLES / "data" / "clinic_messages.jsonl").read_text()))
    kept = (run / "vet" / "kept.jsonl").read_text()
    assert emails and not any(email in kept for email in emails)
    report = json.loads((run / "eval_report.json").read_text())
    assert report["metrics"]["loss"]["tuned"] < report["metrics"]["loss"]["base"]
