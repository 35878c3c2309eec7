"""DP-SGD through the whole recipe: tiny model (`-m integration`) and the bundled model (`-m slow`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_integration import tiny_config

from tunesmith.config import load_config
from tunesmith.recipes.finetune import finetune


@pytest.mark.integration
def test_tiny_dp_run_writes_privacy_report_manifest_and_html(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    cfg = tiny_config(tmp_path, tiny_model_dir, "--privacy.target_epsilon=8", "--train.max_steps=6",
                      "--eval.max_samples=6", "--eval.compare_base=false", "--audit.enabled=false")
    assert cfg.train.strategy == "dp"
    result = finetune(cfg)
    out = capsys.readouterr().out
    assert "examples are padded, not packed" in out and "privacy: epsilon" in out
    report = json.loads((result.run_dir / "privacy_report.json").read_text())
    assert report["steps"] == 6 and report["target_epsilon"] == 8.0 and 0 < report["epsilon"] <= 8.0
    kept = json.loads((result.run_dir / "data_report.json").read_text())["encode"]["train"]["kept"]
    assert report["sample_rate"] == pytest.approx(4 / kept)  # expected batch (batch_size 4) / training examples
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["privacy"] == report and manifest["end_time"]
    page = (result.run_dir / "report.html").read_text()
    assert "Differential privacy" in page and f"{report['epsilon']:.3f}" in page
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-2]["epsilon"] == pytest.approx(report["epsilon"])


@pytest.mark.slow
def test_bundled_model_dp_lora_at_epsilon_8_still_answers_sensibly(tmp_path: Path) -> None:
    """A short DP LoRA run on the bundled SmolLM2-135M and a slice of the demo data: epsilon within budget, the
    answer loss no worse than the base model's, and the adapter still writes words (noise did not wreck it)."""
    cfg = load_config("configs/demo.yaml", [
        f"--run.output_dir={tmp_path / 'runs'}", "--data.max_records=200", "--model.num_threads=1",
        "--privacy.target_epsilon=8", "--train.max_steps=8", "--eval.max_samples=16", "--eval.robustness=[]",
        "--eval.generalisation_samples=0", "--eval.counterfactual=false", "--eval.bootstrap_samples=0",
        "--audit.enabled=false",
    ])
    result = finetune(cfg)
    report = json.loads((result.run_dir / "privacy_report.json").read_text())
    assert report["steps"] == 8 and 7.0 < report["epsilon"] <= 8.0
    evaluation = result.eval_report
    assert evaluation is not None
    loss = evaluation["metrics"]["loss"]
    assert loss["tuned"] < loss["base"]
    answers = [sample["tuned"] for sample in evaluation["samples"]]
    assert answers and all(re.search(r"[^\W\d_]{3,}", answer) for answer in answers), answers  # words, any script
