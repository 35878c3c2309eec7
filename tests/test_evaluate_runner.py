"""The evaluation runner end to end on a tiny model taught one answer, and the base/tuned comparison."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tunesmith.config.schema import EvalConfig
from tunesmith.core.records import LabelRecord, Origin, PairRecord, PromptStyle, prompt_messages
from tunesmith.evaluate.runner import compare, evaluate_model, render_comparison, write_eval_report

STYLE = PromptStyle(labels=("positive", "negative"))
TEXTS = ["Play some jazz music.", "Rate this novel four stars.", "What is the weather like?"]
RECORDS = [
    LabelRecord(text, label, Origin("test.jsonl", i + 1))
    for i, (text, label) in enumerate(zip(TEXTS, ["positive", "positive", "negative"], strict=True))
]


def _taught_batches(tokenizer: Any, answer: str) -> list[dict[str, Any]]:
    """One batch per record: prompt + `answer` turn, loss on the answer turn only."""
    import torch

    batches = []
    for record in RECORDS:
        messages = [{"role": m.role, "content": m.content} for m in prompt_messages(record, STYLE)]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tokenizer(answer + "<|im_end|>\n", add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p_ids + a_ids])
        labels = ids.clone()
        labels[0, : len(p_ids)] = -100
        batches.append({"input_ids": ids, "labels": labels, "position_ids": torch.arange(ids.shape[1])[None]})
    return batches


def _teach(model: Any, batches: list[dict[str, Any]], steps: int = 40) -> None:
    """Overfit the model to the batches' answers (a few dozen Adam steps on the tiny model)."""
    import torch

    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for step in range(steps):
        batch = batches[step % len(batches)]
        loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test_evaluate_model_on_a_model_taught_one_label(tiny_model: Any, tiny_tokenizer: Any) -> None:
    batches = _taught_batches(tiny_tokenizer, "positive")
    _teach(tiny_model, batches)
    cfg = EvalConfig(max_new_tokens=6, batch_size=2)
    result = evaluate_model(tiny_model, tiny_tokenizer, RECORDS, STYLE, cfg, "cpu", eval_batches=batches)

    # The model answers "positive" to all three; two of three references are positive.
    assert [s["prediction"] for s in result["samples"]] == ["positive"] * 3
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["loglik_accuracy"] == pytest.approx(2 / 3)
    assert result["macro_f1"] == pytest.approx((0.8 + 0.0) / 2)  # positive: P 2/3 R 1; negative: never said
    assert result["unmatched_rate"] == 0.0
    assert result["n"] == 3
    assert result["loss"] < 0.5 and result["perplexity"] == pytest.approx(math.exp(result["loss"]))
    assert result["samples"][0] == {
        "prompt": STYLE.label_prompt.format(text=TEXTS[0], labels="positive, negative"),
        "reference": "positive",
        "prediction": "positive",
    }


def test_evaluate_model_respects_max_samples_and_config_metrics(tiny_model: Any, tiny_tokenizer: Any) -> None:
    pairs = [PairRecord(f"source {i}", f"target {i}", Origin("p.jsonl", i + 1)) for i in range(3)]
    cfg = EvalConfig(max_samples=2, max_new_tokens=3, batch_size=2, metrics=["chrf", "exact_match"])
    result = evaluate_model(tiny_model, tiny_tokenizer, pairs, PromptStyle(), cfg, "cpu")
    assert result["n"] == 2 and len(result["samples"]) == 2
    assert set(result) == {"chrf", "exact_match", "n", "samples"}
    with pytest.raises(ValueError, match="no test records"):
        evaluate_model(tiny_model, tiny_tokenizer, [], PromptStyle(), cfg, "cpu")


BASE = {"accuracy": 0.25, "loss": 2.0, "n": 4, "samples": [{"prompt": "p", "reference": "r", "prediction": "b"}]}
TUNED = {"accuracy": 0.75, "loss": 2.5, "n": 4, "samples": [{"prompt": "p", "reference": "r", "prediction": "t"}]}


def test_compare_computes_deltas_directions_and_pairs_samples() -> None:
    report = compare(BASE, TUNED)
    assert report["split"] == "test" and report["n"] == 4
    assert report["metrics"]["accuracy"] == {"base": 0.25, "tuned": 0.75, "delta": 0.5, "higher_is_better": True}
    assert report["metrics"]["loss"] == {"base": 2.0, "tuned": 2.5, "delta": 0.5, "higher_is_better": False}
    assert report["samples"] == [{"prompt": "p", "reference": "r", "base": "b", "tuned": "t"}]

    alone = compare(None, TUNED)
    assert alone["metrics"]["accuracy"] == {"base": None, "tuned": 0.75, "delta": None, "higher_is_better": True}
    assert alone["samples"][0]["base"] is None


def test_render_comparison_colours_better_green_and_worse_red() -> None:
    from rich.console import Console

    table = render_comparison(compare(BASE, TUNED))
    assert [c.header for c in table.columns] == ["metric", "base", "tuned", "delta"]
    assert table.row_count == 2
    deltas = list(table.columns[3].cells)
    assert deltas == ["[green]+0.5000[/green]", "[red]+0.5000[/red]"]  # accuracy up is good, loss up is bad
    console = Console(width=100, record=True)
    console.print(table)
    text = console.export_text()
    assert "0.2500" in text and "0.7500" in text and "lower is better" in text

    alone = render_comparison(compare(None, TUNED))
    assert list(alone.columns[1].cells) == ["-", "-"] and list(alone.columns[3].cells) == ["-", "-"]


def test_write_eval_report_round_trips_and_nulls_nan(tmp_path: Path) -> None:
    report = compare({**BASE, "perplexity": float("nan")}, {**TUNED, "perplexity": 3.0})
    path = write_eval_report(tmp_path / "run" / "eval_report.json", report)
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert loaded["metrics"]["accuracy"]["delta"] == 0.5
    assert loaded["metrics"]["perplexity"] == {
        "base": None,
        "tuned": 3.0,
        "delta": None,
        "higher_is_better": False,
    }
    assert not list(tmp_path.glob("run/*.tmp"))
