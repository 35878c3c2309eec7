"""Robustness: the tuned model on perturbed copies of the test inputs, the metric under each perturbation and the drop.

The word-level perturbations are the augmentation operators (`tunesmith.augment.ops`: keyboard typos, EDA's
random deletion, swap and synonym replacement), so training-time augmentation and test-time robustness use one
definition of "a typo". Case and whitespace noise are defined here (they make no sense as training data).
Each record is perturbed with its own `random.Random(f"{seed}:{name}:{index}")`: the same seed gives the same
copies whatever else runs. References stay as they are: a typo must not change the right answer.

The robustness score is the mean, over perturbations, of `perturbed / clean` for the primary metric (capped at
1; for lower-is-better metrics `clean / perturbed`): 1.0 means no perturbation hurt at all.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from typing import Any

from tunesmith.core.records import Record
from tunesmith.core.registry import Registry
from tunesmith.evaluate.metrics import METRICS
from tunesmith.evaluate.perturb import map_input
from tunesmith.evaluate.predict import Predictions, score

Perturbation = Callable[[str, random.Random, float], str]
PERTURBATIONS: Registry[Perturbation] = Registry[Perturbation]("perturbation")


@PERTURBATIONS.register("typos")
def typos(text: str, rng: random.Random, rate: float) -> str:
    """Keyboard typos (neighbour key, dropped, doubled or transposed letter) in a share of the words."""
    from tunesmith.augment import ops

    return ops.char_noise(text, rng, rate=rate, kinds=ops.TYPO_KINDS)


@PERTURBATIONS.register("deletion")
def deletion(text: str, rng: random.Random, rate: float) -> str:
    """Each word deleted with probability `rate` (one always stays)."""
    from tunesmith.augment import ops

    return ops.random_delete(text, rng, rate=rate)


@PERTURBATIONS.register("swap")
def swap(text: str, rng: random.Random, rate: float) -> str:
    """Pairs of words swapped in place."""
    from tunesmith.augment import ops

    return ops.random_swap(text, rng, rate=rate)


@PERTURBATIONS.register("synonyms")
def synonyms(text: str, rng: random.Random, rate: float) -> str:
    """Words replaced by a WordNet synonym."""
    from tunesmith.augment import ops

    return ops.synonym_replace(text, rng, rate=rate)


@PERTURBATIONS.register("case")
def case_noise(text: str, rng: random.Random, rate: float) -> str:
    """A share of the letters with their case flipped (`Book a TaBle`)."""
    return "".join(ch.swapcase() if ch.isalpha() and rng.random() < rate else ch for ch in text)


@PERTURBATIONS.register("whitespace")
def whitespace_noise(text: str, rng: random.Random, rate: float) -> str:
    """Spaces doubled or dropped between a share of the words, and stray spaces at the ends."""
    parts = text.split(" ")
    out = [parts[0]]
    for part in parts[1:]:
        draw = rng.random()
        sep = "" if draw < rate / 2 else ("  " if draw < rate else " ")
        out.append(sep + part)
    return (" " if rng.random() < rate else "") + "".join(out) + (" " if rng.random() < rate else "")


def check_perturbations(names: Sequence[str]) -> None:
    """Fail early (before any training) on an unknown perturbation name, with a did-you-mean."""
    for name in names:
        PERTURBATIONS.get(name)


def perturb_records(records: Sequence[Record], name: str, rate: float, seed: int) -> list[Record]:
    """A perturbed copy of every record's input, deterministic per (seed, perturbation, index)."""
    perturb = PERTURBATIONS.get(name)
    copies = []
    for index, record in enumerate(records):
        rng = random.Random(f"{seed}:{name}:{index}")
        copies.append(map_input(record, functools.partial(_apply, perturb, rng=rng, rate=rate)))
    return copies


def _apply(perturb: Perturbation, text: str, rng: random.Random, rate: float) -> str:
    return perturb(text, rng, rate)


def sample_indices(n: int, k: int, seed: int) -> list[int]:
    """A seeded sample of k of n indices, in order (all of them when k >= n)."""
    return list(range(n)) if k >= n else sorted(random.Random(seed).sample(range(n), k))


def relative(perturbed: float, clean: float, higher_is_better: bool | None) -> float | None:
    """How much of the clean score survives the perturbation, in [0, 1] (None when undefined)."""
    if higher_is_better is False:
        return min(1.0, clean / perturbed) if perturbed > 0 else (1.0 if clean == 0 else None)
    return min(1.0, perturbed / clean) if clean > 0 else None


def robustness_check(
    records: Sequence[Record],
    clean: Predictions,
    predictor: Callable[[list[Record]], Predictions],
    names: Sequence[str],
    metric_name: str,
    rate: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """Score the model on each perturbation of `records` (whose clean predictions are `clean`).

    Returns `{"metric", "clean", "n", "perturbations": {name: {score, drop, relative, changed, flipped}},
    "score"}`; a perturbation that cannot run (e.g. no WordNet for synonyms) gets `error` instead.
    """
    metric = METRICS.get(metric_name)
    clean_score = score(clean, [metric_name])[0][metric_name]
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            copies = perturb_records(records, name, rate, seed)
        except Exception as exc:  # an operator's missing dependency must not sink the whole evaluation
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        changed = [c != r for c, r in zip(copies, records, strict=True)]
        shown = next((i for i, c in enumerate(changed) if c), None)  # one example, so a reader sees the noise
        perturbed = predictor(copies)
        value = score(perturbed, [metric_name])[0][metric_name]
        flipped = [a != b for a, b in zip(perturbed.answer_keys(), clean.answer_keys(), strict=True)]
        results[name] = {
            "score": value,
            "drop": (clean_score - value) if metric.higher_is_better is not False else (value - clean_score),
            "relative": relative(value, clean_score, metric.higher_is_better),
            "changed": sum(changed) / len(changed),
            "flipped": sum(flipped) / len(flipped),
            "description": (PERTURBATIONS.get(name).__doc__ or "").strip().splitlines()[0].replace("`", ""),
            "example": None if shown is None else {"before": clean.prompts[shown], "after": perturbed.prompts[shown]},
        }
    kept = [r["relative"] for r in results.values() if r.get("relative") is not None]
    return {
        "metric": metric_name,
        "clean": clean_score,
        "n": len(records),
        "rate": rate,
        "perturbations": results,
        "score": sum(kept) / len(kept) if kept else None,
    }
