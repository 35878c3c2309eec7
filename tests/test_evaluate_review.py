"""The review table (biggest wins and losses) and the user's pass/fail marks in review_marks.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.core.errors import EvaluationError
from tunesmith.evaluate.predict import Predictions, sample_ids
from tunesmith.evaluate.review import MARKS_FILE, apply_marks, read_marks, read_review, select_review, write_review


def _preds(answers: list[str], references: list[str]) -> Predictions:
    prompts = [f"prompt {i}" for i in range(len(references))]
    return Predictions("pair", sample_ids(prompts, references), prompts, references, answers, list(answers))


REFS = ["the cat sat", "a dog ran", "red sky", "blue sea", "green tree", "old house"]
BASE = _preds(["the cat sat", "xx", "red sky", "zz", "green tree", "old house"], REFS)
TUNED = _preds(["zz", "a dog ran", "red sky", "blue sea", "green tree", "old hose"], REFS)


def test_wins_then_losses_biggest_first_then_unchanged() -> None:
    rows = select_review(BASE, TUNED, "chrf", n=6, seed=0)
    assert [r["kind"] for r in rows] == ["win", "win", "loss", "loss", "same", "same"]
    assert rows[0]["delta"] >= rows[1]["delta"] > 0 and rows[0]["base_score"] < rows[0]["tuned_score"]
    assert rows[2]["delta"] <= rows[3]["delta"] < 0  # the biggest loss ("the cat sat" -> "zz") comes first
    assert rows[2]["reference"] == "the cat sat" and rows[2]["base"] == "the cat sat" and rows[2]["tuned"] == "zz"


def test_a_third_each_for_wins_and_losses_the_rest_unchanged_weakest_first() -> None:
    rows = select_review(BASE, TUNED, "chrf", n=4, seed=0)
    assert [r["kind"] for r in rows] == ["win", "loss", "same", "same"]
    assert select_review(BASE, TUNED, "chrf", n=4, seed=0) == rows  # seeded
    assert len(select_review(BASE, TUNED, "chrf", n=50, seed=0)) == 6
    assert select_review(BASE, TUNED, "chrf", n=0) == []
    # no unchanged examples: the room goes back to wins and losses
    flipped = _preds(["the cat sat", "xx", "zz", "zz", "zz", "old house"], REFS)
    kinds = [r["kind"] for r in select_review(flipped, TUNED, "chrf", n=4, seed=0)]
    assert kinds == ["win", "win", "win", "loss"]


def test_without_a_base_the_worst_tuned_answers_come_first() -> None:
    rows = select_review(None, TUNED, "chrf", n=2, seed=0)
    assert rows[0]["tuned"] == "zz" and rows[0]["base"] is None and rows[0]["kind"] is None


def test_marks_file_is_created_once_and_read_back(tmp_path: Path) -> None:
    rows = select_review(BASE, TUNED, "chrf", n=4, seed=0)
    write_review(tmp_path, rows)
    assert read_review(tmp_path) == json.loads(json.dumps(rows))
    template = json.loads((tmp_path / MARKS_FILE).read_text())
    assert set(template) == {r["id"] for r in rows} and set(template.values()) == {None}

    first, second = rows[0]["id"], rows[1]["id"]
    (tmp_path / MARKS_FILE).write_text(json.dumps({first: "pass", second: {"mark": "fail", "note": "wrong noun"}}))
    write_review(tmp_path, rows)  # a later evaluation never overwrites the user's marks
    marks = read_marks(tmp_path)
    assert marks == {first: {"mark": "pass", "note": None}, second: {"mark": "fail", "note": "wrong noun"}}
    tally = apply_marks(rows, marks)
    assert (tally["pass"], tally["fail"], tally["unmarked"], tally["pass_rate"]) == (1, 1, 2, 0.5)
    assert tally["rows"][1]["note"] == "wrong noun"


def test_bad_marks_are_typed_errors(tmp_path: Path) -> None:
    (tmp_path / MARKS_FILE).write_text('{"abc": "maybe"}')
    with pytest.raises(EvaluationError, match="'maybe'"):
        read_marks(tmp_path)
    (tmp_path / MARKS_FILE).write_text("{not json")
    with pytest.raises(EvaluationError, match="not valid JSON"):
        read_marks(tmp_path)


def test_sample_ids_are_content_hashes_with_copy_suffixes() -> None:
    ids = sample_ids(["p", "q", "p"], ["r", "r", "r"])
    assert ids[0] != ids[1] and ids[2] == ids[0] + "-2" and len(ids[0]) == 12
