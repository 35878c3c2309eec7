"""Evaluate a model on the test records, compare base and tuned, and write `eval_report.json`.

`evaluate_model` returns a flat dict: one float per metric, plus `n` and `samples`. `compare` turns a base and a
tuned result into the report layout:

    {"split": "test", "n": 64,
     "metrics": {"accuracy": {"base": 0.19, "tuned": 0.88, "delta": 0.69, "higher_is_better": true}, ...},
     "samples": [{"prompt": ..., "reference": ..., "base": ..., "tuned": ...}, ...]}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from tunesmith.config.schema import EvalConfig
from tunesmith.core.records import PromptStyle, Record, prompt_messages
from tunesmith.evaluate.loss import mean_target_loss
from tunesmith.evaluate.metrics import higher_is_better
from tunesmith.evaluate.predict import check_records, predict, score
from tunesmith.evaluate.predict import prompt_text as prompt_text  # re-exported: older callers import it here
from tunesmith.evaluate.predict import record_kind as record_kind

N_SAMPLES = 10
RESERVED_KEYS = ("n", "samples")


def evaluate_model(
    model: Any,
    tokenizer: Any,
    test_records: Sequence[Record],
    style: PromptStyle,
    cfg: EvalConfig,
    device: Any,
    eval_batches: Iterable[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Generate an answer for each test record and score it; label data also gets log-likelihood accuracy.

    Returns `{metric: value, ..., "n": int, "samples": [{prompt, reference, prediction}, ...]}`; with
    `eval_batches`, also `loss` and `perplexity` over them. (`predict` + `score` give the per-example view.)
    """
    records = list(test_records[: cfg.max_samples] if cfg.max_samples is not None else test_records)
    check_records(records)
    predictions = predict(model, tokenizer, records, style, cfg, device)
    result: dict[str, Any] = dict(score(predictions, cfg.metrics)[0])
    if eval_batches is not None:
        result["loss"], result["perplexity"] = mean_target_loss(model, eval_batches)
    result["n"] = len(records)
    result["samples"] = [
        {"prompt": prompt_text(prompt_messages(record, style)), "reference": r, "prediction": a}
        for record, r, a in zip(records[:N_SAMPLES], predictions.references, predictions.answers, strict=False)
    ]
    return result


def compare(base_result: Mapping[str, Any] | None, tuned_result: Mapping[str, Any]) -> dict[str, Any]:
    """The eval report: per metric base, tuned, delta (tuned - base) and direction; samples side by side.

    `base_result` may be None (base not evaluated); then `base` and `delta` are None.
    """
    base = dict(base_result or {})
    names = [k for k in tuned_result if k not in RESERVED_KEYS]
    names += [k for k in base if k not in RESERVED_KEYS and k not in names]
    metrics: dict[str, dict[str, Any]] = {}
    for name in names:
        b, t = base.get(name), tuned_result.get(name)
        delta = t - b if isinstance(b, (int, float)) and isinstance(t, (int, float)) else None
        metrics[name] = {"base": b, "tuned": t, "delta": delta, "higher_is_better": higher_is_better(name)}
    base_samples = base.get("samples") or []
    samples = []
    for i, sample in enumerate(tuned_result.get("samples") or []):
        base_answer = base_samples[i]["prediction"] if i < len(base_samples) else None
        samples.append(
            {
                "prompt": sample["prompt"],
                "reference": sample["reference"],
                "base": base_answer,
                "tuned": sample["prediction"],
            }
        )
    return {"split": "test", "n": tuned_result.get("n"), "metrics": metrics, "samples": samples}


def format_value(value: float | None) -> str:
    """Four decimals for fractions and scores, one for large values (perplexity); a dash when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4f}"


def render_comparison(report: Mapping[str, Any]) -> Table:
    """A rich table, one row per metric: base | tuned | delta, the delta green when better, red when worse.

    Rows that carry a bootstrap interval (`ci`) add a column for it, and label reports with a McNemar test
    say its p-value in the caption.
    """
    table = Table(title=f"evaluation on {report.get('split', 'test')} (n={report.get('n')})")
    table.add_column("metric")
    for column in ("base", "tuned", "delta"):
        table.add_column(column, justify="right")
    rows = report["metrics"]
    with_ci = any(isinstance(row.get("ci"), Mapping) for row in rows.values())
    if with_ci:
        level = next(row["ci"].get("confidence", 0.95) for row in rows.values() if isinstance(row.get("ci"), Mapping))
        table.add_column(f"{level:.0%} CI of delta", justify="right")
    for name, row in rows.items():
        delta = row.get("delta")
        direction = row.get("higher_is_better", True)
        text = "-" if delta is None else ("+" if delta >= 0 else "") + format_value(delta)
        better = delta is not None and delta != 0 and direction is not None and (delta > 0) == bool(direction)
        style = "" if delta in (None, 0) or direction is None else ("green" if better else "red")
        arrow = "" if direction is None or direction else " (lower is better)"
        cells = [
            name + arrow,
            format_value(row.get("base")),
            format_value(row.get("tuned")),
            f"[{style}]{text}[/{style}]" if style else text,
        ]
        if with_ci:
            ci = row.get("ci") or {}
            low, high = ci.get("low"), ci.get("high")
            cells.append("-" if low is None else f"[{format_value(low)}, {format_value(high)}]")
        table.add_row(*cells)
    test = report.get("significance")
    if isinstance(test, Mapping) and test.get("p_value") is not None:
        table.caption = (
            f"McNemar exact test (tuned vs base, accuracy): p = {test['p_value']:.3g}; "
            f"tuned alone right on {test['tuned_only_correct']}, base alone on {test['base_only_correct']}"
        )
    return table


def write_eval_report(path: str | Path, report: Mapping[str, Any]) -> Path:
    """Write the report as JSON (NaN/inf become null, so any JSON reader can load it); atomic replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_finite(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _finite(value: Any) -> Any:
    """Replace non-finite floats with None, recursively (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
