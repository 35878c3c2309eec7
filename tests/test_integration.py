"""Whole pipelines on the tiny model (`-m integration`) and on the bundled model (`-m slow`)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tunesmith.config import load_config
from tunesmith.recipes.finetune import finetune

INTENTS = {
    "weather": ["what is the weather in {c}", "will it rain in {c} tomorrow", "forecast for {c} please"],
    "music": ["play some {g} music", "put on a {g} playlist", "i want to hear {g} songs"],
}
CITIES = ["paris", "rome", "oslo", "lima", "cairo", "tokyo", "berlin", "quito", "delhi", "seoul"]
GENRES = ["jazz", "rock", "folk", "punk", "soul", "metal", "blues", "disco", "funk", "opera"]


def write_intent_data(path: Path, seed: int = 0) -> Path:
    rng = random.Random(seed)
    rows = []
    for label, templates in INTENTS.items():
        for template in templates:
            for word in CITIES if label == "weather" else GENRES:
                rows.append({"text": template.format(c=word, g=word), "label": label})
    rng.shuffle(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def tiny_config(tmp_path: Path, model_dir: Path, *extra: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_intent_data(tmp_path / "intents.jsonl")
    overrides = [
        f"--model.source={model_dir}",
        f"--data.train_file={data}",
        f"--run.output_dir={tmp_path / 'runs'}",
        "--run.run_id=tiny",
        "--model.num_threads=1",
        "--encode.max_seq_length=96",
        "--train.learning_rate=3e-3",
        "--train.batch_size=4",
        "--train.epochs=3",
        "--train.save_every_steps=10",
        "--eval.max_new_tokens=4",
        *extra,
    ]
    return load_config(None, overrides)


@pytest.mark.integration
def test_tiny_pipeline_trains_evaluates_and_exports(tmp_path: Path, tiny_model_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tunesmith.recipes.export_run import export_run

    result = finetune(tiny_config(tmp_path, tiny_model_dir))
    run = result.run_dir
    for name in ("config.yaml", "manifest.json", "metrics.jsonl", "data_report.json", "eval_report.json"):
        assert (run / name).is_file(), name
    report = json.loads((run / "eval_report.json").read_text())
    loss = report["metrics"]["loss"]
    assert loss["tuned"] < loss["base"] - 0.5  # the tuned model learned the answers' format
    assert set(report["metrics"]) >= {"accuracy", "macro_f1", "loglik_accuracy", "perplexity"}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["end_time"] and manifest["versions"]["peft"]

    # PEFT interop: the saved adapter loads in plain peft and gives the same logits as the exported merge
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tuned = PeftModel.from_pretrained(base, run / "adapter").eval()
    merged_dir = export_run(run, merge=True)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    with torch.no_grad():
        torch.testing.assert_close(tuned(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.integration
def test_tiny_pipeline_resumes_a_finished_run_without_retraining(tmp_path: Path, tiny_model_dir: Path) -> None:
    cfg = tiny_config(tmp_path, tiny_model_dir, "--train.max_steps=8", "--eval.compare_base=false")
    first = finetune(cfg, evaluate_after=False)
    again = finetune(cfg, evaluate_after=False)
    assert again.train["resumed_from_step"] == first.train["steps"] == 8
    rows = [json.loads(line) for line in (first.run_dir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [row["step"] for row in rows if "loss" in row]
    assert train_steps == [5, 8]  # log_every_steps=5 and the last step; nothing logged twice by the resume


@pytest.mark.slow
def test_bundled_model_loads_and_learns(tmp_path: Path) -> None:
    data = write_intent_data(tmp_path / "intents.jsonl")
    cfg = load_config(
        None,
        [
            f"--data.train_file={data}",
            f"--run.output_dir={tmp_path / 'runs'}",
            "--train.max_steps=12",
            "--train.batch_size=4",
            "--eval.max_samples=16",
        ],
    )
    result = finetune(cfg)
    loss = result.eval_report["metrics"]["loss"]  # type: ignore[index]
    assert loss["tuned"] < loss["base"]


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


FORMAT_ROWS = {
    "messages": lambda i: {
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": f"What is {i} plus one?"},
            {"role": "assistant", "content": str(i + 1)},
        ]
    },
    "alpaca": lambda i: {"instruction": "Add one.", "input": str(i), "output": str(i + 1)},
    "pairs": lambda i: {"source": f"count {i}", "target": f"next {i + 1}"},
}


@pytest.mark.integration
@pytest.mark.parametrize("fmt", sorted(FORMAT_ROWS))
def test_each_record_kind_runs_end_to_end(tmp_path: Path, tiny_model_dir: Path, fmt: str) -> None:
    data = write_rows(tmp_path / f"{fmt}.jsonl", [FORMAT_ROWS[fmt](i) for i in range(40)])
    cfg = load_config(
        None,
        [
            f"--model.source={tiny_model_dir}",
            f"--data.train_file={data}",
            f"--run.output_dir={tmp_path / 'runs'}",
            "--model.num_threads=1",
            "--train.max_steps=4",
            "--train.batch_size=4",
            "--eval.max_new_tokens=4",
        ],
    )
    result = finetune(cfg)
    report = json.loads((result.run_dir / "eval_report.json").read_text())
    expected = {"pairs": {"chrf", "bleu"}, "alpaca": {"chrf"}, "messages": {"chrf"}}[fmt]
    assert expected <= set(report["metrics"]) and "loss" in report["metrics"]
    assert report["n"] == 12 and len(report["samples"]) == 10
    data_report = json.loads((result.run_dir / "data_report.json").read_text())
    assert data_report["format"] == ("messages" if fmt == "messages" else fmt)


@pytest.mark.integration
def test_cli_eval_chat_and_export_on_a_trained_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    import subprocess
    import sys

    from tunesmith.config import dump_config

    cfg = tiny_config(tmp_path, tiny_model_dir, "--train.max_steps=4", "--eval.max_samples=6")
    run = finetune(cfg).run_dir
    config_file = tmp_path / "run.yaml"
    config_file.write_text(dump_config(cfg))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tunesmith.cli.main", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    evaluated = cli("eval", str(config_file), "--adapter", str(run / "adapter"))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "base" in evaluated.stdout and "tuned" in evaluated.stdout
    assert json.loads((run / "eval_report.json").read_text())["n"] == 6

    adapter = str(run / "adapter")
    chatted = cli("chat", str(config_file), "--adapter", adapter, "-m", "play jazz", "--max-new-tokens", "3")
    assert chatted.returncode == 0, chatted.stderr

    exported = cli("export", str(run))
    assert exported.returncode == 0 and (run / "export" / "adapter_config.json").is_file()
    missing = cli("eval", str(config_file), "--adapter", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "adapter folder not found" in missing.stderr


@pytest.mark.integration
def test_same_config_gives_bitwise_identical_adapters(tmp_path: Path, tiny_model_dir: Path) -> None:
    import torch
    from safetensors.torch import load_file

    weights = []
    for name in ("a", "b"):
        cfg = tiny_config(tmp_path / name, tiny_model_dir, "--train.max_steps=6", "--eval.max_samples=4")
        result = finetune(cfg, evaluate_after=name == "a")  # evaluating first must not change the training
        weights.append(load_file(result.adapter_dir / "adapter_model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
