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
from tunesmith.core.records import Message, PromptStyle, Record, prompt_messages, target_of
from tunesmith.evaluate.generate import generate_answers
from tunesmith.evaluate.label_match import match_label, score_labels_by_loglik
from tunesmith.evaluate.loss import mean_target_loss
from tunesmith.evaluate.metrics import METRICS, default_metrics, higher_is_better

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
    `eval_batches`, also `loss` and `perplexity` over them.
    """
    records = list(test_records[: cfg.max_samples] if cfg.max_samples is not None else test_records)
    if not records:
        raise ValueError("no test records to evaluate; raise data.test_fraction or pass data.eval_file")
    kind = record_kind(records)
    prompts = [prompt_messages(r, style) for r in records]
    references = [target_of(r) for r in records]
    answers = generate_answers(model, tokenizer, prompts, cfg.max_new_tokens, cfg.batch_size, device)
    result: dict[str, Any] = {}
    predictions = answers
    labels: list[str] = []
    if kind == "label":
        labels = list(style.labels) or sorted(set(references))
        matched = [match_label(a, labels) for a in answers]
        # An unmatched answer stays as generated, so every label metric counts it wrong.
        predictions = [m if m is not None else a for m, a in zip(matched, answers, strict=True)]
        result["unmatched_rate"] = sum(m is None for m in matched) / len(matched)
        if cfg.label_loglik:
            loglik = score_labels_by_loglik(model, tokenizer, prompts, labels, cfg.batch_size)
            result["loglik_accuracy"] = METRICS.get("accuracy").compute(loglik, references)
    for name in cfg.metrics or default_metrics(kind):
        result[name] = METRICS.get(name).compute(predictions, references, labels=labels, kind=kind)
    if eval_batches is not None:
        result["loss"], result["perplexity"] = mean_target_loss(model, eval_batches)
    result["n"] = len(records)
    result["samples"] = [
        {"prompt": prompt_text(p), "reference": r, "prediction": a}
        for p, r, a in zip(prompts[:N_SAMPLES], references, answers, strict=False)
    ]
    return result


def record_kind(records: Sequence[Record]) -> str:
    """The records' kind; a mix of kinds is scored as free text (`chat`), since labels would not apply to all."""
    kinds = {r.kind for r in records}
    return kinds.pop() if len(kinds) == 1 else "chat"


def prompt_text(messages: Sequence[Message]) -> str:
    """A readable prompt for reports: the last user turn (the system prompt is the same for every sample)."""
    users = [m.content for m in messages if m.role == "user"]
    return users[-1] if users else (messages[-1].content if messages else "")


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
    """A rich table, one row per metric: base | tuned | delta, the delta green when better, red when worse."""
    table = Table(title=f"evaluation on {report.get('split', 'test')} (n={report.get('n')})")
    table.add_column("metric")
    for column in ("base", "tuned", "delta"):
        table.add_column(column, justify="right")
    for name, row in report["metrics"].items():
        delta = row.get("delta")
        text = "-" if delta is None else ("+" if delta >= 0 else "") + format_value(delta)
        better = delta is not None and delta != 0 and (delta > 0) == bool(row.get("higher_is_better", True))
        style = "" if delta in (None, 0) else ("green" if better else "red")
        arrow = "" if row.get("higher_is_better", True) else " (lower is better)"
        table.add_row(
            name + arrow,
            format_value(row.get("base")),
            format_value(row.get("tuned")),
            f"[{style}]{text}[/{style}]" if style else text,
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
