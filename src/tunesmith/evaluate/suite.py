"""The evaluation report: every metric for base and tuned, the delta with its bootstrap interval, McNemar for labels,
per-class tables and confusion matrices, lengths, the review table, and the optional sections (generalisation,
robustness, fairness, counterfactual) that the recipe computed. No model is needed here.

    report = build_report(base, tuned, settings)          # base: ModelEval | None
    write_eval_report(run / "eval_report.json", report)   # runner.write_eval_report

Layout of `eval_report.json` (older readers keep working: `split`, `n`, `metrics`, `samples` are unchanged):

    {"split": "test", "n": 208, "kind": "label", "labels": [...], "primary_metric": "accuracy",
     "metrics": {"accuracy": {"base", "tuned", "delta", "higher_is_better", "ci": {"low", "high", ...}}, ...},
     "significance": {"test": "mcnemar_exact", "p_value": ..., ...} | null,
     "samples": [...], "label_details": {"base": {...}, "tuned": {...}}, "lengths": {...}, "review": [...],
     "generalisation": {...} | null, "robustness": {...} | null, "fairness": {...} | null,
     "counterfactual": {...} | null, "settings": {...}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.core.durable import atomic_write_text
from tunesmith.evaluate.fairness import fairness_section
from tunesmith.evaluate.label_metrics import confusion_matrix, per_class
from tunesmith.evaluate.metrics import primary_metric
from tunesmith.evaluate.output_metrics import length_summary
from tunesmith.evaluate.predict import Predictions, metric_for
from tunesmith.evaluate.review import per_sample_scores, select_review, write_review
from tunesmith.evaluate.runner import N_SAMPLES, compare
from tunesmith.evaluate.significance import bootstrap_interval, mcnemar_exact, paired_bootstrap
from tunesmith.track.run_dir import package_versions

# the libraries whose definitions the metric values depend on (the run manifest records torch & co.)
EVAL_PACKAGES = ("scikit-learn", "sacrebleu", "rouge-score", "numpy", "matplotlib")


@dataclass
class ModelEval:
    """One model's evaluation on the test split: per-example predictions, metric values and their statistics,
    plus the extra checks run on it (counterfactual, robustness) and its scores on other splits."""

    predictions: Predictions
    values: dict[str, float]
    stats: dict[str, np.ndarray] = field(default_factory=dict)
    counterfactual: dict[str, Any] | None = None
    robustness: dict[str, Any] | None = None
    split_values: dict[str, dict[str, float]] = field(default_factory=dict)
    split_sizes: dict[str, int] = field(default_factory=dict)

    def as_result(self) -> dict[str, Any]:
        """The flat dict `runner.compare` takes: values, `n` and the first samples."""
        p = self.predictions
        samples = [
            {"prompt": p.prompts[i], "reference": p.references[i], "prediction": p.answers[i]}
            for i in range(min(N_SAMPLES, len(p)))
        ]
        return {**self.values, "n": len(p), "samples": samples}


@dataclass
class ReportSettings:
    bootstrap_samples: int = 1000
    confidence: float = 0.95
    review_samples: int = 20
    seed: int = 0


def build_report(
    base: ModelEval | None,
    tuned: ModelEval,
    settings: ReportSettings,
    generalisation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The full report dict (see the module docstring); `base` None means the base model was not evaluated."""
    if base is not None and base.predictions.ids != tuned.predictions.ids:
        raise ValueError("base and tuned were evaluated on different test examples; pass the same records to both")
    p = tuned.predictions
    report = compare(base.as_result() if base is not None else None, tuned.as_result())
    for name, row in report["metrics"].items():
        row["ci"] = _interval(name, base, tuned, settings)
    primary = primary_metric(p.kind)
    report.update(
        {
            "kind": p.kind,
            "labels": list(p.labels),
            "primary_metric": primary,
            "significance": _mcnemar(base, tuned),
            "label_details": _label_details(base, tuned),
            "lengths": _lengths(base, tuned),
            "review": select_review(
                base.predictions if base else None, p, primary, settings.review_samples, settings.seed
            ),
            "generalisation": dict(generalisation) if generalisation else None,
            "robustness": tuned.robustness,
            "fairness": _fairness(base, tuned),
            "counterfactual": _counterfactual(base, tuned),
            "settings": {
                "bootstrap_samples": settings.bootstrap_samples,
                "confidence": settings.confidence,
                "seed": settings.seed,
                "review_samples": settings.review_samples,
                "versions": package_versions(EVAL_PACKAGES),
            },
        }
    )
    return report


def write_report_files(run_path: Path, base: ModelEval | None, tuned: ModelEval, report: Mapping[str, Any]) -> None:
    """eval_report.json, predictions.jsonl (both models, one example a line) and the review files."""
    from tunesmith.evaluate.run_report import EVAL_FILE, PREDICTIONS_FILE
    from tunesmith.evaluate.runner import write_eval_report

    write_eval_report(run_path / EVAL_FILE, report)
    rows = [{"model": side, **row} for side, result in (("base", base), ("tuned", tuned)) if result is not None
            for row in result.predictions.to_rows()]
    atomic_write_text(run_path / PREDICTIONS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_review(run_path, report["review"])


def _interval(name: str, base: ModelEval | None, tuned: ModelEval, settings: ReportSettings) -> dict | None:
    """Paired bootstrap interval of the delta (or of the tuned value alone without a base); None for values
    without per-example statistics (loss, perplexity)."""
    if name not in tuned.stats or settings.bootstrap_samples <= 0:
        return None
    metric = metric_for(name)
    if base is not None and name in base.stats:
        ci = paired_bootstrap(metric, base.stats[name], tuned.stats[name], settings.bootstrap_samples,
                              settings.confidence, settings.seed)
        return {**ci, "of": "delta"}
    ci = bootstrap_interval(metric, tuned.stats[name], settings.bootstrap_samples, settings.confidence, settings.seed)
    return {**ci, "of": "tuned"}


def _mcnemar(base: ModelEval | None, tuned: ModelEval) -> dict[str, Any] | None:
    """McNemar's exact test on per-example correctness (label tasks with a base model)."""
    if base is None or tuned.predictions.kind != "label":
        return None
    base_hits = [s == 1.0 for s in per_sample_scores(base.predictions, "accuracy")]
    tuned_hits = [s == 1.0 for s in per_sample_scores(tuned.predictions, "accuracy")]
    return {**mcnemar_exact(base_hits, tuned_hits), "metric": "accuracy"}


def _label_details(base: ModelEval | None, tuned: ModelEval) -> dict[str, Any] | None:
    if tuned.predictions.kind != "label":
        return None
    out = {}
    for side, result in (("base", base), ("tuned", tuned)):
        if result is not None:
            p = result.predictions
            out[side] = {
                "per_class": per_class(p.predictions, p.references, p.labels),
                "confusion": confusion_matrix(p.predictions, p.references, p.labels),
            }
    return out


def _lengths(base: ModelEval | None, tuned: ModelEval) -> dict[str, Any]:
    out = {
        "reference": length_summary(tuned.predictions.references),
        "tuned": length_summary(tuned.predictions.answers),
    }
    if base is not None:
        out["base"] = length_summary(base.predictions.answers)
    return out


def _fairness(base: ModelEval | None, tuned: ModelEval) -> dict[str, Any] | None:
    tuned_section = fairness_section(tuned.predictions)
    if tuned_section is None:
        return None
    return {"tuned": tuned_section, "base": fairness_section(base.predictions) if base is not None else None}


def _counterfactual(base: ModelEval | None, tuned: ModelEval) -> dict[str, Any] | None:
    if tuned.counterfactual is None:
        return None
    return {"tuned": tuned.counterfactual, "base": base.counterfactual if base is not None else None}
