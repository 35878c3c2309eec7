"""Vetting as a stage of `tunesmith train` (tiny model): on by default, files in the run folder, counts agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.config import load_config
from tunesmith.recipes.finetune import finetune

INTENTS = {
    "weather": ["what is the weather in {w}", "will it rain in {w} tomorrow", "forecast for {w} please"],
    "music": ["play some {w} music", "put on a {w} playlist", "i want to hear {w} songs"],
}
WORDS = ["paris", "rome", "oslo", "lima", "cairo", "tokyo", "berlin", "quito", "delhi", "seoul"]


def _dirty_data(path: Path) -> tuple[Path, int]:
    rows = [
        {"text": template.format(w=word), "label": label}
        for label, templates in INTENTS.items()
        for template in templates
        for word in WORDS
    ]
    rows[0] = {"text": "what is the weather in paris, text me on +44 20 7946 0958", "label": "weather"}
    rows += [dict(rows[5]), {"text": "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "label": "music"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, len(rows)


@pytest.mark.integration
def test_train_vets_by_default_and_trains_on_the_kept_records(tmp_path: Path, tiny_model_dir: Path) -> None:
    data, n_rows = _dirty_data(tmp_path / "d.jsonl")
    cfg = load_config(None, [
        f"--model.source={tiny_model_dir}", f"--data.train_file={data}", f"--run.output_dir={tmp_path / 'runs'}",
        "--run.run_id=vetted", "--model.num_threads=1", "--encode.max_seq_length=64", "--train.max_steps=2",
        "--vet.outliers.perplexity=true",  # the base model scores each record
    ])
    result = finetune(cfg, evaluate_after=False)
    vet_dir = result.run_dir / "vet"
    report = json.loads((vet_dir / "vet_report.json").read_text())
    data_report = json.loads((result.run_dir / "data_report.json").read_text())
    assert report["records_in"] == n_rows
    assert data_report["records_used"] == report["records_kept"] == n_rows - report["removed"]
    assert sum(data_report["counts"].values()) == report["records_kept"]
    quarantine = [json.loads(line) for line in (vet_dir / "quarantine.jsonl").read_text().splitlines()]
    assert {"pii", "dedup", "quality"} <= {q["filter"] for q in quarantine}
    assert report["filters"]["outliers"]["enabled"] and "perplexity" in json.dumps(report["filters"]["outliers"])
    kept_text = (vet_dir / "kept.jsonl").read_text()
    assert "7946" not in kept_text and "<PHONE>" in kept_text
