"""Every registered metric against the library that defines it, on fixed inputs; bad inputs give typed errors."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.core.errors import EvaluationError, TunesmithError
from tunesmith.core.registry import UnknownNameError
from tunesmith.evaluate.label_metrics import OUTSIDE, confusion_matrix, per_class
from tunesmith.evaluate.metrics import METRICS, primary_metric
from tunesmith.evaluate.output_metrics import is_refusal, length_summary

LABELS = ["book", "play", "weather"]
REFS = ["book", "book", "play", "play", "play", "weather", "weather", "book", "weather", "play"]
PREDS = ["book", "play", "play", "no idea", "play", "weather", "book", "book", "Weather.", "weather"]
# sklearn sees the normalised answers; an answer outside the label set is a label it is not asked about
SK_PREDS = ["book", "play", "play", "<junk>", "play", "weather", "book", "book", "weather", "weather"]

HYPS = ["the cat sat on the mat", "hello there world", "a quick brown fox", "nothing in common", ""]
TEXT_REFS = ["the cat is on the mat", "hello world", "the quick brown fox jumps", "something else entirely", "x"]


@pytest.mark.parametrize("average", ["macro", "micro"])
def test_precision_recall_f1_equal_sklearn(average: str) -> None:
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, _ = precision_recall_fscore_support(REFS, SK_PREDS, labels=LABELS, average=average, zero_division=0)
    got = {m: METRICS.get(f"{average}_{m}").compute(PREDS, REFS, labels=LABELS) for m in ("precision", "recall", "f1")}
    assert got == pytest.approx({"precision": p, "recall": r, "f1": f}, abs=1e-12)


def test_accuracy_per_class_and_confusion_equal_sklearn() -> None:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support
    from sklearn.metrics import confusion_matrix as sk_confusion

    assert METRICS.get("accuracy").compute(PREDS, REFS, labels=LABELS) == pytest.approx(accuracy_score(REFS, SK_PREDS))
    p, r, f, support = precision_recall_fscore_support(REFS, SK_PREDS, labels=LABELS, zero_division=0)
    table = per_class(PREDS, REFS, LABELS)
    assert list(table) == LABELS
    for i, label in enumerate(LABELS):
        assert table[label] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": support[i]})
    cm = confusion_matrix(PREDS, REFS, LABELS)
    assert cm["columns"] == [*LABELS, OUTSIDE]
    expected = sk_confusion(REFS, SK_PREDS, labels=LABELS)
    assert np.array(cm["matrix"])[:, :3].tolist() == expected.tolist()
    assert [row[3] for row in cm["matrix"]] == [0, 1, 0]  # the "no idea" answer to a `play` example


def test_sacrebleu_metrics_equal_corpus_scores() -> None:
    import sacrebleu

    assert METRICS.get("bleu").compute(HYPS, TEXT_REFS) == pytest.approx(sacrebleu.corpus_bleu(HYPS, [TEXT_REFS]).score)
    assert METRICS.get("chrf").compute(HYPS, TEXT_REFS) == pytest.approx(sacrebleu.corpus_chrf(HYPS, [TEXT_REFS]).score)
    assert METRICS.get("ter").compute(HYPS, TEXT_REFS) == pytest.approx(sacrebleu.corpus_ter(HYPS, [TEXT_REFS]).score)
    # a per-example chrF is sacrebleu's sentence chrF
    chrf = METRICS.get("chrf")
    scores = chrf.sample_scores(chrf.sample_stats(HYPS, TEXT_REFS))
    pairs = zip(HYPS, TEXT_REFS, strict=True)
    assert scores == pytest.approx([sacrebleu.sentence_chrf(h, [r]).score for h, r in pairs])


def test_rouge_equals_mean_of_rouge_score_fmeasures() -> None:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = [scorer.score(r, h) for h, r in zip(HYPS, TEXT_REFS, strict=True)]
    for ours, theirs in (("rouge_1", "rouge1"), ("rouge_2", "rouge2"), ("rouge_l", "rougeL")):
        expected = float(np.mean([s[theirs].fmeasure for s in scores]))
        assert METRICS.get(ours).compute(HYPS, TEXT_REFS) == pytest.approx(expected)


def test_exact_and_normalised_match() -> None:
    predictions = ["The Eiffel Tower.", " Paris ", "paris!", "Berlin"]
    references = ["Eiffel tower", "Paris", "Paris", "Paris"]
    assert METRICS.get("exact_match").compute(predictions, references) == pytest.approx(1 / 4)
    assert METRICS.get("normalized_match").compute(predictions, references) == pytest.approx(3 / 4)


def test_length_and_refusal_statistics() -> None:
    answers = ["I'm sorry, but I cannot help with that.", "Sure: it is 42.", "As an AI I can't say", ""]
    references = ["forty two", "it is 42", "42", "42"]
    assert [is_refusal(a) for a in answers] == [True, False, True, False]
    assert METRICS.get("refusal_rate").compute(answers, references) == pytest.approx(0.5)
    assert METRICS.get("mean_length").compute(answers, references) == pytest.approx((8 + 4 + 6 + 0) / 4)
    assert METRICS.get("length_ratio").compute(answers, references) == pytest.approx(18 / 7)
    assert METRICS.get("mean_length").higher_is_better is None
    summary = length_summary(answers)
    assert summary["max"] == 8 and summary["empty_rate"] == 0.25


def test_resampled_scores_equal_recomputing_on_the_resample() -> None:
    """A bootstrap resample scored from summed stats equals the metric computed on the resampled strings."""
    rng = np.random.default_rng(0)
    for name, predictions, references in (("bleu", HYPS, TEXT_REFS), ("chrf", HYPS, TEXT_REFS),
                                          ("macro_f1", PREDS, REFS), ("rouge_l", HYPS, TEXT_REFS)):
        metric = METRICS.get(name)
        stats = metric.sample_stats(predictions, references, labels=LABELS)
        draw = rng.integers(0, len(references), size=len(references))
        counts = np.bincount(draw, minlength=len(references)).astype(float)[None, :]
        expected = metric.compute([predictions[i] for i in draw], [references[i] for i in draw], labels=LABELS)
        assert metric.resampled(stats, counts)[0] == pytest.approx(expected), name


def test_bad_inputs_give_typed_errors() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'rouge_l'"):
        METRICS.get("rouge_L")
    with pytest.raises(EvaluationError, match="not in the label set") as caught:
        METRICS.get("macro_f1").compute(["book"], ["cook"], labels=LABELS)
    assert "'cook'" in str(caught.value) and isinstance(caught.value, TunesmithError)
    with pytest.raises(EvaluationError, match="not in the label set"):
        METRICS.get("accuracy").compute(["book"], ["cook"], labels=LABELS)
    with pytest.raises(EvaluationError, match="no examples"):
        METRICS.get("bleu").compute([], [])
    with pytest.raises(EvaluationError, match="2 predictions but 1 references"):
        METRICS.get("rouge_1").compute(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="unknown record kind"):
        primary_metric("image")
