"""The evaluation stage end to end on the tiny model: base and tuned, every section, the run folder's files."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tunesmith.config import load_config
from tunesmith.core.errors import EvaluationError
from tunesmith.core.records import LabelRecord, Origin, PromptStyle
from tunesmith.evaluate.predict import predict
from tunesmith.recipes.common import console
from tunesmith.recipes.eval_suite import check_eval_settings, evaluate_base, evaluate_tuned, write_evaluation

STYLE = PromptStyle(labels=("music", "weather"))
TEXTS = ["play jazz for John", "weather in Paris for her", "play rock music", "rain in Rome tomorrow",
         "put on a song for Mary", "forecast for the French coast"]


def _records(offset: int) -> list[LabelRecord]:
    return [LabelRecord(t, "music" if i % 2 == 0 else "weather", Origin("d.jsonl", offset + i),
                        group="a" if i < 3 else "b") for i, t in enumerate(TEXTS)]


def _config(*extra: str) -> Any:
    return load_config(None, ["--eval.max_new_tokens=3", "--eval.batch_size=4", "--eval.bootstrap_samples=50",
                              "--eval.generalisation_samples=3", "--eval.robustness_samples=4",
                              "--eval.robustness=[typos,case]", "--eval.review_samples=4", *extra])


def test_predict_keeps_groups_and_scores_labels_both_ways(tiny_model: Any, tiny_tokenizer: Any) -> None:
    cfg = _config()
    predictions = predict(tiny_model, tiny_tokenizer, _records(1), STYLE, cfg.eval, "cpu")
    assert predictions.groups == ["a", "a", "a", "b", "b", "b"] and predictions.prompts == TEXTS
    assert predictions.loglik_predictions is not None and set(predictions.loglik_predictions) <= {"music", "weather"}
    again = predict(tiny_model, tiny_tokenizer, _records(1), STYLE, cfg.eval, "cpu")
    assert again.answers == predictions.answers  # greedy: the same answers every time
    with pytest.raises(EvaluationError, match="no test records"):
        predict(tiny_model, tiny_tokenizer, [], STYLE, cfg.eval, "cpu")


def test_base_and_tuned_evaluation_writes_every_file(tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    cfg = _config()
    splits = SimpleNamespace(train=_records(100), val=_records(200)[:2], test=_records(1))
    out = console()
    base = evaluate_base(tiny_model, tiny_tokenizer, splits, STYLE, cfg, "cpu", None, out)
    tuned = evaluate_tuned(tiny_model, tiny_tokenizer, splits, STYLE, cfg, "cpu", None, out)
    (tmp_path / "manifest.json").write_text(json.dumps({"run_id": "t", "seed": 0}))
    report = write_evaluation(base, tuned, cfg, tmp_path, out)

    for name in ("eval_report.json", "predictions.jsonl", "review.jsonl", "review_marks.json", "report.html"):
        assert (tmp_path / name).is_file(), name
    assert set(report["metrics"]) >= {"accuracy", "macro_f1", "micro_f1", "loss", "perplexity", "loglik_accuracy"}
    assert report["generalisation"]["splits"] == {"test": 6, "train": 3, "val": 2}
    assert set(report["robustness"]["perturbations"]) == {"typos", "case"}
    assert report["counterfactual"]["tuned"]["tested"] == 4  # John, her, Mary, French
    assert set(report["fairness"]["tuned"]["groups"]) == {"a", "b"}
    # the same model on both sides: every delta is zero and McNemar finds nothing
    assert report["metrics"]["accuracy"]["delta"] == 0 and report["significance"]["p_value"] == 1.0


def test_bad_eval_settings_fail_before_training() -> None:
    from tunesmith.core.errors import ConfigError
    from tunesmith.core.registry import UnknownNameError

    with pytest.raises(UnknownNameError, match="Did you mean 'synonyms'"):
        check_eval_settings(_config("--eval.robustness=[synonym]"))
    with pytest.raises(ConfigError, match="eval.confidence"):
        _config("--eval.confidence=1.5")
