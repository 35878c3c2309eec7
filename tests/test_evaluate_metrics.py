"""Metric values against hand-computed references and the libraries that define them."""

from __future__ import annotations

import pytest

from tunesmith.core.registry import UnknownNameError
from tunesmith.evaluate.metrics import METRICS, default_metrics, higher_is_better, normalize_answer


def test_normalize_answer_keeps_first_line_lowercases_and_drops_trailing_punctuation() -> None:
    assert normalize_answer("  Positive.\nBecause the text is happy") == "positive"
    assert normalize_answer("get_weather!?") == "get_weather"
    assert normalize_answer("") == ""


def test_accuracy_matches_hand_count() -> None:
    predictions = ["Positive.", "negative", "neutral\nexplanation", "positive"]
    references = ["positive", "positive", "Neutral", "negative"]
    # hits: 1 (normalised), 0, 1 (first line), 0 -> 2 of 4
    assert METRICS.get("accuracy").compute(predictions, references) == pytest.approx(0.5)


def test_exact_match_is_stricter_than_accuracy() -> None:
    predictions = ["positive", "Positive."]
    references = ["positive", "positive"]
    assert METRICS.get("exact_match").compute(predictions, references) == pytest.approx(0.5)
    assert METRICS.get("accuracy").compute(predictions, references) == pytest.approx(1.0)


def test_macro_f1_equals_sklearn_and_counts_out_of_set_predictions_wrong() -> None:
    from sklearn.metrics import f1_score

    labels = ["a", "b", "c"]
    references = ["a", "a", "b", "b", "c", "c"]
    predictions = ["a", "b", "b", "b", "c", "a"]
    expected = f1_score(references, predictions, labels=labels, average="macro")
    assert METRICS.get("macro_f1").compute(predictions, references, labels=labels) == pytest.approx(expected)

    # An answer outside the label set is a miss for "c" and a false positive for nobody.
    with_junk = ["a", "b", "b", "b", "no idea", "a"]
    got = METRICS.get("macro_f1").compute(with_junk, references, labels=labels)
    # per class: a P=1/2 R=1/2 F=.5; b P=2/3 R=1 F=.8; c F=0
    assert got == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_chrf_and_bleu_equal_sacrebleu() -> None:
    import sacrebleu

    predictions = ["bonjour le monde", "le chat est noir"]
    references = ["bonjour tout le monde", "le chat est noir"]
    assert METRICS.get("chrf").compute(predictions, references) == pytest.approx(
        sacrebleu.corpus_chrf(predictions, [references]).score
    )
    assert METRICS.get("bleu").compute(predictions, references) == pytest.approx(
        sacrebleu.corpus_bleu(predictions, [references]).score
    )
    assert 0 < METRICS.get("chrf").compute(predictions, references) < 100


def test_mismatched_or_empty_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        METRICS.get("accuracy").compute(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no examples"):
        METRICS.get("chrf").compute([], [])


def test_unknown_metric_suggests_close_name() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'accuracy'"):
        METRICS.get("acuracy")


def test_default_metrics_and_directions() -> None:
    # the headline metrics come first (the console table and the README quote them); the rest follow
    assert default_metrics("label")[:2] == ["accuracy", "macro_f1"]
    assert default_metrics("pair")[:2] == ["chrf", "bleu"]
    assert default_metrics("completion")[0] == "chrf" and default_metrics("completion") == default_metrics("chat")
    assert all(name in METRICS for kind in ("label", "pair", "chat") for name in default_metrics(kind))
    with pytest.raises(ValueError, match="unknown record kind"):
        default_metrics("image")
    assert higher_is_better("accuracy") and not higher_is_better("loss") and not higher_is_better("perplexity")
