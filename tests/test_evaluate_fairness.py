"""Per-group fairness figures (checked against fairlearn) and counterfactual swaps of protected terms."""

from __future__ import annotations

import random

import pytest

from tunesmith.core.records import LabelRecord, Origin, Record
from tunesmith.evaluate.counterfactual import counterfactual_check, counterfactual_copies, swap_terms
from tunesmith.evaluate.fairness import fairness_section, parity_and_odds
from tunesmith.evaluate.predict import Predictions, sample_ids

LABELS = ["approve", "deny"]


def _predictions(preds: list[str], refs: list[str], groups: list[str | None]) -> Predictions:
    prompts = [f"applicant {i}" for i in range(len(refs))]
    return Predictions("label", sample_ids(prompts, refs), prompts, refs, list(preds), list(preds), LABELS, groups)


REFS = ["approve", "approve", "deny", "deny", "approve", "approve", "deny", "deny", "approve", "deny"]
PREDS = ["approve", "approve", "deny", "approve", "approve", "deny", "deny", "deny", "deny", "deny"]
GROUPS = ["a", "a", "a", "a", "b", "b", "b", "b", "b", None]


def test_binary_gaps_equal_fairlearn() -> None:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    kept = [i for i, g in enumerate(GROUPS) if g is not None]
    y_true = [int(REFS[i] == "approve") for i in kept]
    y_pred = [int(PREDS[i] == "approve") for i in kept]
    groups = [GROUPS[i] for i in kept]
    section = fairness_section(_predictions(PREDS, REFS, GROUPS))
    assert section is not None
    assert section["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=groups))
    assert section["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=groups))
    # group a: 3 of 4 right; group b: 3 of 5 right; the ungrouped record is left out
    assert section["groups"]["a"] == {"n": 4, "accuracy": pytest.approx(0.75), "macro_f1": pytest.approx(0.7333333)}
    assert section["worst_group"] == "b" and section["worst_group_metric"] == pytest.approx(0.6)
    assert section["metric_gap"] == pytest.approx(0.15) and section["ungrouped"] == 1


def test_multiclass_gaps_take_the_largest_one_vs_rest_gap() -> None:
    y_true = ["x", "y", "z", "x", "y", "z"]
    y_pred = ["x", "y", "z", "y", "y", None]  # group 2 mislabels one x as y and answers z with nothing
    result = parity_and_odds(y_pred, y_true, {"1": [0, 1, 2], "2": [3, 4, 5]}, ["x", "y", "z"])
    assert result["per_label"]["y"]["demographic_parity_difference"] == pytest.approx(2 / 3 - 1 / 3)
    assert result["per_label"]["x"]["tpr_difference"] == pytest.approx(1.0)
    assert result["demographic_parity_difference"] == pytest.approx(1 / 3)
    assert result["equalized_odds_difference"] == pytest.approx(1.0)


def test_no_fairness_section_without_two_groups_or_for_text_tasks() -> None:
    assert fairness_section(_predictions(PREDS, REFS, [None] * 10)) is None
    assert fairness_section(_predictions(PREDS, REFS, ["a"] * 10)) is None
    text = _predictions(PREDS, REFS, GROUPS)
    text.kind = "pair"
    assert fairness_section(text) is None


def test_swaps_keep_case_fix_articles_and_handle_her() -> None:
    text, categories = swap_terms("He gave her book to Mary, then called her. An uncle came.", random.Random(0))
    assert text.startswith("She gave his book to ") and text.endswith(", then called him. An aunt came.")
    assert "Mary" not in text and categories == {"gender", "names"}
    text, categories = swap_terms("Find an Indian restaurant", random.Random(1))
    assert categories == {"nationalities"} and "Indian" not in text
    assert text.split()[1] in ("a", "an") and (text.split()[1] == "an") == (text.split()[2][0] in "AEIOU")
    assert swap_terms("nothing to see; the female lead", random.Random(0)) == ("nothing to see; the male lead",
                                                                             {"gender"})


def _records(texts: list[str]) -> list[Record]:
    return [LabelRecord(t, "approve" if "good" in t else "deny", Origin("f", i + 1)) for i, t in enumerate(texts)]


TEXTS = ["John has good credit", "Mary has bad credit", "the loan is fine", "she is a good French customer"]


def test_counterfactual_copies_are_deterministic_by_seed_and_skip_untouched_records() -> None:
    copies = counterfactual_copies(_records(TEXTS), seed=7)
    assert [index for index, _, _ in copies] == [0, 1, 3]
    assert copies == counterfactual_copies(_records(TEXTS), seed=7)
    names = {counterfactual_copies(_records(TEXTS), seed=s)[0][1].text for s in range(10)}  # type: ignore[union-attr]
    assert len(names) > 1  # another seed, another replacement name
    assert copies[2][1].label == "approve" and copies[2][2] == {"gender", "nationalities"}


def test_flip_rate_counts_changed_labels_per_category() -> None:
    records = _records(TEXTS)

    def biased(batch: list[Record]) -> Predictions:
        # approves good credit, except for anyone called Mary or described as "he": a biased model
        texts = [r.text for r in batch]  # type: ignore[union-attr]
        preds = ["approve" if "good" in t and "Mary" not in t and "he " not in t.lower()[:3] else "deny"
                 for t in texts]
        refs = [r.label for r in batch]  # type: ignore[union-attr]
        return Predictions("label", sample_ids(texts, refs), texts, refs, preds, preds, LABELS)

    original = biased(records)
    result = counterfactual_check(records, original, biased, seed=0)
    assert result is not None and result["tested"] == 3
    # "she is a good..." becomes "he is a good ...": its label flips; the other two do not
    assert result["flips"] == 1 and result["flip_rate"] == pytest.approx(1 / 3)
    assert result["by_category"]["gender"] == {"tested": 1, "flips": 1, "flip_rate": 1.0}
    assert result["by_category"]["names"]["flip_rate"] == 0.0
    example = result["examples"][0]
    assert example["prompt"].startswith("she") and example["swapped_prompt"].startswith("he")
    assert (example["before"], example["after"]) == ("approve", "deny")

    text_task = _predictions(["a"], ["a"], [None])
    text_task.kind = "pair"
    assert counterfactual_check(records[:1], text_task, biased) is None
    none = counterfactual_check(_records(["the loan is fine"]), biased(_records(["the loan is fine"])), biased)
    assert none is not None and none["tested"] == 0 and none["flip_rate"] is None
