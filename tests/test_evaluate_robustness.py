"""Perturbed copies of the test inputs: deterministic by seed, references untouched, drops and the robustness score."""

from __future__ import annotations

import pytest

from tunesmith.core.records import ChatRecord, LabelRecord, Message, Origin, PairRecord, Record
from tunesmith.core.registry import UnknownNameError
from tunesmith.evaluate.perturb import map_input
from tunesmith.evaluate.predict import Predictions, sample_ids
from tunesmith.evaluate.robustness import (
    PERTURBATIONS,
    check_perturbations,
    perturb_records,
    relative,
    robustness_check,
    sample_indices,
)

TEXTS = [
    "please play some relaxing jazz music in the kitchen",
    "book a table for four at the italian restaurant tonight",
    "what will the weather be like in paris tomorrow morning",
    "add this wonderful song to my favourite workout playlist",
]
RECORDS: list[Record] = [
    LabelRecord(t, "music" if "music" in t or "song" in t else "other", Origin("t", i + 1)) for i, t in enumerate(TEXTS)
]
NAMES = ["typos", "deletion", "swap", "synonyms", "case", "whitespace"]


@pytest.mark.parametrize("name", NAMES)
def test_each_perturbation_changes_inputs_deterministically_and_keeps_labels(name: str) -> None:
    first = perturb_records(RECORDS, name, rate=0.3, seed=1)
    assert first == perturb_records(RECORDS, name, rate=0.3, seed=1)
    assert [r.label for r in first] == [r.label for r in RECORDS]  # type: ignore[union-attr]
    assert sum(c.text != r.text for c, r in zip(first, RECORDS, strict=True)) >= 3  # type: ignore[union-attr]
    others = [perturb_records(RECORDS, name, rate=0.3, seed=s) for s in range(2, 6)]
    assert any(o != first for o in others)


def test_map_input_rewrites_inputs_only() -> None:
    pair = map_input(PairRecord("bonjour", "hello", Origin("p", 1)), str.upper)
    assert (pair.source, pair.target) == ("BONJOUR", "hello")  # type: ignore[union-attr]
    chat = ChatRecord((Message("system", "be nice"), Message("user", "hi"), Message("assistant", "hey"),
                       Message("user", "bye"), Message("assistant", "ciao")), Origin("c", 1))
    contents = [m.content for m in map_input(chat, str.upper).messages]  # type: ignore[union-attr]
    assert contents == ["be nice", "HI", "hey", "BYE", "ciao"]


def test_case_and_whitespace_noise_change_only_case_and_spaces() -> None:
    import random

    text = "Book a table for two"
    noisy = PERTURBATIONS.get("case")(text, random.Random(0), 0.5)
    assert noisy.lower() == text.lower() and noisy != text
    spaced = PERTURBATIONS.get("whitespace")(text, random.Random(3), 0.8)
    assert spaced.split() != [] and "".join(spaced.split()) == "".join(text.split()) and spaced != text


def _keyword_predictor(records: list[Record]) -> Predictions:
    """A model that finds "music" or "song" verbatim: typos and deletions hurt it, case noise does not."""
    texts = [r.text for r in records]  # type: ignore[union-attr]
    refs = [r.label for r in records]  # type: ignore[union-attr]
    preds = ["music" if "music" in t.lower() or "song" in t.lower() else "other" for t in texts]
    return Predictions("label", sample_ids(texts, refs), texts, refs, preds, preds, ["music", "other"])


def test_robustness_check_reports_drop_per_perturbation_and_a_score() -> None:
    clean = _keyword_predictor(RECORDS)
    result = robustness_check(RECORDS, clean, _keyword_predictor, ["case", "deletion", "typos"], "accuracy",
                              rate=0.5, seed=0)
    assert result["clean"] == 1.0 and result["n"] == 4
    case = result["perturbations"]["case"]
    assert case["score"] == 1.0 and case["drop"] == 0.0 and case["relative"] == 1.0 and case["flipped"] == 0.0
    hurt = [result["perturbations"][n] for n in ("deletion", "typos")]
    assert any(r["drop"] > 0 for r in hurt)
    for r in hurt:
        assert r["score"] == pytest.approx(1.0 - r["drop"]) and r["flipped"] == pytest.approx(r["drop"])
    expected = (1.0 + sum(r["relative"] for r in hurt)) / 3
    assert result["score"] == pytest.approx(expected) and result["score"] < 1.0
    assert robustness_check(RECORDS, clean, _keyword_predictor, ["typos"], "accuracy", rate=0.5, seed=0)[
        "perturbations"]["typos"] == result["perturbations"]["typos"]


def test_a_failing_operator_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str, rng: object, rate: float) -> str:
        raise RuntimeError("no lexicon")

    monkeypatch.setitem(PERTURBATIONS._items, "test_broken", broken)

    result = robustness_check(RECORDS, _keyword_predictor(RECORDS), _keyword_predictor, ["test_broken"], "accuracy")
    assert result["perturbations"]["test_broken"] == {"error": "RuntimeError: no lexicon"} and result["score"] is None


def test_unknown_perturbation_suggests_a_name() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'typos'"):
        check_perturbations(["typo"])


def test_relative_score_and_sampling() -> None:
    assert relative(0.5, 1.0, True) == 0.5 and relative(2.0, 1.0, True) == 1.0 and relative(1.0, 0.0, True) is None
    assert relative(40.0, 20.0, False) == 0.5  # TER doubled: half the quality kept
    assert sample_indices(5, 10, 0) == [0, 1, 2, 3, 4]
    assert sample_indices(100, 5, 0) == sample_indices(100, 5, 0) and len(sample_indices(100, 5, 1)) == 5
