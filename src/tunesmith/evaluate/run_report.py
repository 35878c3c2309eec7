"""report.html from a run folder, and the comparison of two runs; files only, no model.

    tunesmith report runs/<id>                 # re-render runs/<id>/report.html (e.g. after marking the review)
    tunesmith compare runs/<a> runs/<b>        # metrics of two tuned models side by side, paired where possible

What a run folder may hold, and where it shows: `eval_report.json` (every evaluation section),
`predictions.jsonl` (per-example answers, used to pair two runs), `metrics.jsonl` (loss curves, read afresh),
`review.jsonl` + `review_marks.json` (the review table and the user's marks), `vet/vet_report.json` (vetting),
`privacy_report.json` or `privacy/privacy_report.json` (DP guarantee), `audit_report.json` (leakage audit),
`data_report.json`, `manifest.json`, `config.yaml`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunesmith.core.durable import atomic_write_text
from tunesmith.core.errors import EvaluationError
from tunesmith.evaluate.generalisation import loss_curves, overfitting, split_gaps
from tunesmith.evaluate.metrics import METRICS, higher_is_better
from tunesmith.evaluate.predict import Predictions
from tunesmith.evaluate.privacy.report_section import audit_section
from tunesmith.evaluate.privacy_section import dp_privacy_section
from tunesmith.evaluate.report_html import render_html
from tunesmith.evaluate.review import apply_marks, read_marks, read_review

REPORT_FILE = "report.html"
EVAL_FILE = "eval_report.json"
PREDICTIONS_FILE = "predictions.jsonl"
PRIVACY_FILES = ("privacy_report.json", "privacy/privacy_report.json")
_RUN_MARKERS = ("manifest.json", "config.yaml", EVAL_FILE)


def _json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def check_run_dir(run_path: Path) -> None:
    if not run_path.is_dir() or not any((run_path / m).is_file() for m in _RUN_MARKERS):
        raise EvaluationError(
            f"{run_path} is not a run folder (no manifest.json, config.yaml or eval_report.json); pass runs/<id>"
        )


def read_metric_rows(run_path: Path) -> list[dict[str, Any]]:
    path = run_path / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line)) if line.strip() else None
        except json.JSONDecodeError:
            continue  # a line cut by a kill mid-write: the rest of the curve is still good
    return rows


def load_bundle(run_path: str | Path) -> dict[str, Any]:
    """Everything the report shows, read from the run folder (missing files are simply absent sections)."""
    run_path = Path(run_path)
    check_run_dir(run_path)
    report = _json(run_path / EVAL_FILE) or {}
    rows = read_metric_rows(run_path)
    if rows or report.get("generalisation"):
        report = {**report, "generalisation": _refresh_generalisation(report.get("generalisation") or {}, rows)}
    privacy = next(((name, _json(run_path / name)) for name in PRIVACY_FILES if (run_path / name).is_file()), None)
    config = run_path / "config.yaml"
    return {
        "run_id": run_path.name,
        "eval": report,
        "manifest": _json(run_path / "manifest.json") or {},
        "data_report": _json(run_path / "data_report.json"),
        "train_report": _json(run_path / "train_report.json"),
        "vet": _json(run_path / "vet" / "vet_report.json"),
        "privacy": privacy,
        "review": apply_marks(read_review(run_path) or report.get("review") or [], read_marks(run_path)),
        "config_text": config.read_text(encoding="utf-8") if config.is_file() else None,
        "extra_sections": [s for s in (dp_privacy_section(run_path), audit_section(run_path)) if s is not None],
    }


def _refresh_generalisation(stored: Mapping[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Curves re-read from metrics.jsonl (a report re-rendered after more training shows the whole history) and
    verdicts re-derived from the stored numbers, so an old report follows the current rules."""
    splits = [s for s in ("train", "val", "test") if s in (stored.get("splits") or {})]
    values = {s: {m: r[s] for m, r in (stored.get("metrics") or {}).items() if r.get(s) is not None} for s in splits}
    curves = loss_curves(rows) if rows else dict(stored.get("curves") or {})
    return {
        **stored,
        "metrics": split_gaps(values, {m: higher_is_better(m) for m in stored.get("metrics") or {}}),
        "curves": curves,
        "overfitting": overfitting(curves),
    }


def render_run_report(run_path: str | Path) -> Path:
    """Write `<run>/report.html` from the run folder's files and return its path."""
    run_path = Path(run_path)
    page = render_html(load_bundle(run_path))
    target = run_path / REPORT_FILE
    atomic_write_text(target, page)
    return target


def read_predictions(run_path: Path, model: str = "tuned") -> Predictions | None:
    """One model's per-example predictions from `predictions.jsonl` (None when the file is absent)."""
    path = run_path / PREDICTIONS_FILE
    report = _json(run_path / EVAL_FILE) or {}
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = [r for r in rows if r.get("model") == model]
    return Predictions.from_rows(chosen, report.get("kind", "chat"), report.get("labels") or []) if chosen else None


def compare_runs(run_a: str | Path, run_b: str | Path, bootstrap_samples: int = 1000, seed: int = 0) -> dict:
    """Tuned metrics of run A and run B, `b - a` per metric, and, when both runs kept per-example predictions on
    the same test examples, a paired bootstrap interval per metric and McNemar's test for labels."""
    from tunesmith.evaluate.significance import mcnemar_exact, paired_bootstrap

    a, b = Path(run_a), Path(run_b)
    for path in (a, b):
        check_run_dir(path)
        if not (path / EVAL_FILE).is_file():
            raise EvaluationError(
                f"{path} has no {EVAL_FILE}; evaluate it first: tunesmith eval CONFIG --adapter {path}/adapter"
            )
    report_a, report_b = _json(a / EVAL_FILE), _json(b / EVAL_FILE)
    names = [n for n in report_a["metrics"] if n in report_b["metrics"]]
    metrics: dict[str, dict[str, Any]] = {}
    for name in names:
        va, vb = report_a["metrics"][name].get("tuned"), report_b["metrics"][name].get("tuned")
        delta = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        metrics[name] = {"a": va, "b": vb, "delta": delta, "higher_is_better": higher_is_better(name), "ci": None}
    pa, pb = read_predictions(a), read_predictions(b)
    paired = None
    if pa is not None and pb is not None and pa.ids and set(pa.ids) == set(pb.ids):
        order = {sample_id: i for i, sample_id in enumerate(pb.ids)}
        pb = pb.subset([order[i] for i in pa.ids])
        ctx = {"labels": pa.labels, "kind": pa.kind}
        for name in names:
            if name in METRICS:
                metric = METRICS.get(name)
                stats_a = metric.sample_stats(pa.predictions, pa.references, **ctx)
                stats_b = metric.sample_stats(pb.predictions, pb.references, **ctx)
                metrics[name]["ci"] = paired_bootstrap(metric, stats_a, stats_b, bootstrap_samples, seed=seed)
        if pa.kind == "label":
            hits = METRICS.get("accuracy")
            paired = mcnemar_exact(
                [s == 1.0 for s in hits.sample_scores(hits.sample_stats(pa.predictions, pa.references))],
                [s == 1.0 for s in hits.sample_scores(hits.sample_stats(pb.predictions, pb.references))],
            )
    return {
        "a": str(a), "b": str(b), "n": [report_a.get("n"), report_b.get("n")], "metrics": metrics,
        "paired": any(m["ci"] is not None for m in metrics.values()),
        "significance": paired, "config_changes": config_changes(a, b),
    }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_changes(a: Path, b: Path) -> list[dict[str, Any]]:
    """Config fields that differ between two runs (`run.run_id` and `run.output_dir` left out)."""
    import yaml

    def load(path: Path) -> dict[str, Any]:
        config = path / "config.yaml"
        return _flatten(yaml.safe_load(config.read_text(encoding="utf-8")) or {}) if config.is_file() else {}

    ca, cb = load(a), load(b)
    skip = {"run.run_id", "run.output_dir"}
    return [{"field": k, "a": ca.get(k), "b": cb.get(k)} for k in sorted(set(ca) | set(cb))
            if k not in skip and ca.get(k) != cb.get(k)]


def render_run_comparison(comparison: Mapping[str, Any]) -> Any:
    """A rich table: metric | A | B | B - A | CI (when paired)."""
    from rich.table import Table

    from tunesmith.evaluate.runner import format_value

    table = Table(title=f"A = {comparison['a']}   B = {comparison['b']}")
    for column in ("metric", "A (tuned)", "B (tuned)", "B - A", "95% CI of B - A"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, row in comparison["metrics"].items():
        delta, direction = row["delta"], row["higher_is_better"]
        text = "-" if delta is None else ("+" if delta >= 0 else "") + format_value(delta)
        if delta and direction is not None:
            text = f"[{'green' if (delta > 0) == direction else 'red'}]{text}[/]"
        ci = row.get("ci") or {}
        interval = f"[{format_value(ci['low'])}, {format_value(ci['high'])}]" if ci.get("low") is not None else "-"
        table.add_row(name, format_value(row["a"]), format_value(row["b"]), text, interval)
    test = comparison.get("significance")
    if test:
        table.caption = f"McNemar exact (accuracy): p = {test['p_value']:.3g}"
    return table
