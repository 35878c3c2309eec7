"""The evaluation stage of `tunesmith train` and `tunesmith eval`: run the models, then write every report.

    base = evaluate_base(model, tokenizer, splits, style, cfg, device, dtype, out)      # before training
    tuned = evaluate_tuned(model, tokenizer, splits, style, cfg, device, dtype, out)    # after training
    report = write_evaluation(base, tuned, cfg, run_path, out)

Writes into the run folder: `eval_report.json` (all sections), `predictions.jsonl` (per-example answers of both
models), `review.jsonl` + `review_marks.json` (kept if it exists), and `report.html`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunesmith.config import Config
from tunesmith.core.records import PromptStyle, Record
from tunesmith.recipes.common import build_collate, encode_split

Predictor = Callable[[list[Record]], Any]


def records_to_evaluate(splits: Any, cfg: Config) -> list[Record]:
    records = list(splits.test)
    return records[: cfg.eval.max_samples] if cfg.eval.max_samples is not None else records


def check_eval_settings(cfg: Config) -> None:
    """Fail before any training on settings the evaluation would only reject at the end (perturbation names)."""
    from tunesmith.evaluate.robustness import check_perturbations

    check_perturbations(cfg.eval.robustness)


def make_predictor(
    model: Any, tokenizer: Any, style: PromptStyle, cfg: Config, device: Any, dtype: Any, loglik: bool | None = None
) -> Predictor:
    """records -> Predictions with this model, under the run's autocast."""
    from tunesmith.evaluate.predict import predict
    from tunesmith.models.device import autocast_context

    def run(records: list[Record]) -> Any:
        with autocast_context(device, dtype):
            return predict(model, tokenizer, records, style, cfg.eval, device, loglik=loglik)

    return run


def split_loss(model: Any, tokenizer: Any, records: list[Record], style: PromptStyle, cfg: Config, device: Any,
               dtype: Any) -> tuple[float, float] | None:
    """Held-out loss and perplexity on `records` (encoded with this model's tokenizer); None if nothing encodes."""
    from tunesmith.evaluate.loss import mean_target_loss
    from tunesmith.models.device import autocast_context

    examples, _ = encode_split(records, tokenizer, style, cfg.encode)
    if not examples:
        return None
    collate = build_collate(False, tokenizer.pad_token_id)
    size = cfg.eval.batch_size
    batches = [collate(examples[i : i + size]) for i in range(0, len(examples), size)]
    with autocast_context(device, dtype):
        return mean_target_loss(model, batches)


def score_split(model: Any, tokenizer: Any, records: list[Record], style: PromptStyle, cfg: Config, device: Any,
                dtype: Any) -> Any:
    """A ModelEval of one model on `records`: predictions, metric values and stats, loss and perplexity."""
    from tunesmith.evaluate.predict import score
    from tunesmith.evaluate.suite import ModelEval

    predictions = make_predictor(model, tokenizer, style, cfg, device, dtype)(records)
    values, stats = score(predictions, cfg.eval.metrics)
    loss = split_loss(model, tokenizer, records, style, cfg, device, dtype)
    if loss is not None:
        values["loss"], values["perplexity"] = loss
    return ModelEval(predictions=predictions, values=values, stats=stats)


def evaluate_base(model: Any, tokenizer: Any, splits: Any, style: PromptStyle, cfg: Config, device: Any, dtype: Any,
                  out: Any) -> Any:
    """The base model on the test split (and its counterfactual flips, to compare with the tuned model's)."""
    records = records_to_evaluate(splits, cfg)
    out.print(f"evaluating the base model on {len(records)} test records ...")
    result = score_split(model, tokenizer, records, style, cfg, device, dtype)
    _counterfactual(result, records, model, tokenizer, style, cfg, device, dtype)
    return result


def evaluate_tuned(model: Any, tokenizer: Any, splits: Any, style: PromptStyle, cfg: Config, device: Any, dtype: Any,
                   out: Any) -> Any:
    """The tuned model: test split, train/val samples (generalisation), counterfactual swaps, perturbations."""
    from tunesmith.evaluate.metrics import primary_metric
    from tunesmith.evaluate.robustness import robustness_check, sample_indices

    records = records_to_evaluate(splits, cfg)
    out.print(f"evaluating the tuned model on {len(records)} test records ...")
    result = score_split(model, tokenizer, records, style, cfg, device, dtype)
    result.split_values["test"] = _plain(result.values)
    result.split_sizes["test"] = len(records)
    seed, k = cfg.run.seed, cfg.eval.generalisation_samples
    for name, split in (("train", list(splits.train)), ("val", list(splits.val))):
        if k > 0 and split:
            sample = [split[i] for i in sample_indices(len(split), k, seed)]
            out.print(f"  scoring {len(sample)} {name} records for the generalisation gap ...")
            result.split_values[name] = _plain(score_split(model, tokenizer, sample, style, cfg, device, dtype).values)
            result.split_sizes[name] = len(sample)
    _counterfactual(result, records, model, tokenizer, style, cfg, device, dtype)
    if cfg.eval.robustness:
        chosen = sample_indices(len(records), cfg.eval.robustness_samples, seed)
        out.print(f"  robustness: {len(chosen)} records x {len(cfg.eval.robustness)} perturbations ...")
        result.robustness = robustness_check(
            [records[i] for i in chosen],
            result.predictions.subset(chosen),
            make_predictor(model, tokenizer, style, cfg, device, dtype, loglik=False),
            cfg.eval.robustness,
            primary_metric(result.predictions.kind),
            rate=cfg.eval.robustness_rate,
            seed=seed,
        )
    return result


def _plain(values: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()}


def _counterfactual(result: Any, records: list[Record], model: Any, tokenizer: Any, style: PromptStyle, cfg: Config,
                    device: Any, dtype: Any) -> None:
    from tunesmith.evaluate.counterfactual import counterfactual_check

    if cfg.eval.counterfactual:
        predictor = make_predictor(model, tokenizer, style, cfg, device, dtype, loglik=False)
        result.counterfactual = counterfactual_check(records, result.predictions, predictor, seed=cfg.run.seed)


def write_evaluation(base: Any, tuned: Any, cfg: Config, run_path: Path, out: Any, render: bool = True) -> dict:
    """eval_report.json, predictions.jsonl, review files and (with `render`) report.html; prints the table."""
    from tunesmith.evaluate.generalisation import generalisation_section
    from tunesmith.evaluate.metrics import higher_is_better
    from tunesmith.evaluate.run_report import read_metric_rows, render_run_report
    from tunesmith.evaluate.runner import render_comparison
    from tunesmith.evaluate.suite import ReportSettings, build_report, write_report_files

    generalisation = None
    if tuned.split_values:
        directions = {name: higher_is_better(name) for name in tuned.split_values.get("test", {})}
        generalisation = generalisation_section(tuned.split_values, tuned.split_sizes, read_metric_rows(run_path),
                                                directions)
    settings = ReportSettings(cfg.eval.bootstrap_samples, cfg.eval.confidence, cfg.eval.review_samples, cfg.run.seed)
    report = build_report(base, tuned, settings, generalisation)
    write_report_files(run_path, base, tuned, report)
    out.print(render_comparison(report))
    if render and cfg.eval.report_html:
        out.print(f"report: {render_run_report(run_path)}")
    return report

