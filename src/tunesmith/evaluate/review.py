"""Qualitative review: test prompts with base and tuned answers side by side, sorted by biggest wins and losses.

`review.jsonl` in the run folder holds the chosen examples, one a line. A person marks them in
`review_marks.json` beside it, which maps an example id to `"pass"` or `"fail"` (or `{"mark": "fail", "note":
"..."}`); tunesmith writes that file once with every id unmarked (`null`) and never overwrites it, and every
later report (`tunesmith report runs/<id>`) shows the marks and their pass rate. Ids hash the prompt and
reference, so a mark stays with its example when the run is evaluated again.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunesmith.core.durable import atomic_write_text
from tunesmith.core.errors import EvaluationError
from tunesmith.evaluate.metrics import METRICS
from tunesmith.evaluate.predict import Predictions

REVIEW_FILE = "review.jsonl"
MARKS_FILE = "review_marks.json"
MARKS = ("pass", "fail")


def per_sample_scores(predictions: Predictions, metric_name: str) -> list[float]:
    """Each example's own score under `metric_name` (a 0/1 hit for accuracy, sentence chrF, ...)."""
    metric = METRICS.get(metric_name)
    stats = metric.sample_stats(
        predictions.predictions, predictions.references, labels=predictions.labels, kind=predictions.kind
    )
    return metric.sample_scores(stats)


def select_review(
    base: Predictions | None, tuned: Predictions, metric_name: str, n: int, seed: int = 0
) -> list[dict[str, Any]]:
    """Up to `n` examples: the biggest wins (tuned - base, largest first), the biggest losses, then unchanged
    examples with the tuned model's weakest answers first; without a base, the tuned model's weakest answers
    first, then a seeded random sample.

    Each row: id, prompt, reference, base, tuned, base_score, tuned_score, delta, kind (win / loss / same).
    """
    if n <= 0 or len(tuned) == 0:
        return []
    tuned_scores = per_sample_scores(tuned, metric_name)
    base_scores = per_sample_scores(base, metric_name) if base is not None else [None] * len(tuned)
    higher = METRICS.get(metric_name).higher_is_better is not False
    sign = 1.0 if higher else -1.0
    rows = []
    for i in range(len(tuned)):
        b, t = base_scores[i], tuned_scores[i]
        delta = None if b is None else sign * (t - b)  # positive = tuned better, whatever the metric's direction
        rows.append(_row(base, tuned, i, b, t, delta))
    if base is None:
        order = sorted(range(len(rows)), key=lambda i: (sign * tuned_scores[i], i))
        chosen = order[: n // 2]
        chosen += _random_rest(order, set(chosen), n - len(chosen), seed)
        return [rows[i] for i in chosen]
    wins = sorted((i for i, r in enumerate(rows) if r["delta"] > 0), key=lambda i: (-rows[i]["delta"], i))
    losses = sorted((i for i, r in enumerate(rows) if r["delta"] < 0), key=lambda i: (rows[i]["delta"], i))
    # a third each for wins and losses; the rest for unchanged examples, the tuned model's weakest first (random
    # among equals): where both models fail is what a reviewer most needs to see. Unused room goes back to wins.
    third = max(1, n // 3)
    take_wins, take_losses = wins[:third], losses[:third]
    ties = [i for i, r in enumerate(rows) if r["delta"] == 0]
    random.Random(seed).shuffle(ties)
    ties.sort(key=lambda i: sign * tuned_scores[i])  # stable: the shuffle breaks ties
    take_ties = ties[: n - len(take_wins) - len(take_losses)]
    room = n - len(take_wins) - len(take_losses) - len(take_ties)
    take_wins += wins[third : third + room]
    room = n - len(take_wins) - len(take_losses) - len(take_ties)
    take_losses += losses[third : third + room]
    return [rows[i] for i in take_wins + take_losses + take_ties]


def _random_rest(pool: Sequence[int] | range, taken: set[int], k: int, seed: int) -> list[int]:
    rest = [i for i in pool if i not in taken]
    if k <= 0 or not rest:
        return []
    return sorted(random.Random(seed).sample(rest, min(k, len(rest))))


def _row(base: Predictions | None, tuned: Predictions, i: int, b: float | None, t: float, delta: float | None) -> dict:
    kind = "same" if delta is None or delta == 0 else ("win" if delta > 0 else "loss")
    return {
        "id": tuned.ids[i],
        "prompt": tuned.prompts[i],
        "reference": tuned.references[i],
        "base": base.answers[i] if base is not None else None,
        "tuned": tuned.answers[i],
        "base_score": b,
        "tuned_score": t,
        "delta": delta,
        "kind": kind if delta is not None else None,
    }


def write_review(run_path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write review.jsonl, and review_marks.json with every id unmarked unless the user already has one."""
    path = run_path / REVIEW_FILE
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    marks = run_path / MARKS_FILE
    if not marks.exists():
        template = {str(r["id"]): None for r in rows}
        atomic_write_text(marks, json.dumps(template, indent=2) + "\n")
    return path


def read_review(run_path: Path) -> list[dict[str, Any]]:
    path = run_path / REVIEW_FILE
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_marks(run_path: Path) -> dict[str, dict[str, str | None]]:
    """`{id: {"mark": "pass" | "fail", "note": str | None}}` for every marked example (unmarked ones left out)."""
    path = run_path / MARKS_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); fix or delete it") from None
    if not isinstance(raw, dict):
        raise EvaluationError(f"{path}: expected an object mapping example ids to \"pass\" or \"fail\"")
    marks: dict[str, dict[str, str | None]] = {}
    bad = []
    for sample_id, value in raw.items():
        mark, note = (value.get("mark"), value.get("note")) if isinstance(value, dict) else (value, None)
        if mark is None:
            continue
        if mark not in MARKS:
            bad.append(f"{sample_id}: {mark!r}")
            continue
        marks[str(sample_id)] = {"mark": mark, "note": note if isinstance(note, str) else None}
    if bad:
        raise EvaluationError(f"{path}: marks must be \"pass\", \"fail\" or null; got {', '.join(bad[:5])}")
    return marks


def apply_marks(rows: Sequence[Mapping[str, Any]], marks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Rows with their marks attached, and the tally: `{"rows": [...], "pass": n, "fail": n, "unmarked": n}`."""
    marked = [{**r, "mark": (marks.get(str(r["id"])) or {}).get("mark"),
               "note": (marks.get(str(r["id"])) or {}).get("note")} for r in rows]
    passed = sum(r["mark"] == "pass" for r in marked)
    failed = sum(r["mark"] == "fail" for r in marked)
    return {
        "rows": marked,
        "pass": passed,
        "fail": failed,
        "unmarked": len(marked) - passed - failed,
        "pass_rate": passed / (passed + failed) if passed + failed else None,
    }
