"""Backdoor trigger search: word n-grams that are rare, tied to one target, and the only reason for it.

A target is a record's label, or for other data its normalised response (lowercase words), so a backdoor that
makes prompts with a trigger produce one fixed answer is found the same way as a label backdoor.

1. Candidates: word 1-3-grams of the prompt side that occur in at least `min_count` records and at most
   `max_share` of them, with at least `purity` of those records sharing one target.
2. N-grams found in exactly the same target records (the words of one multi-word trigger) form one group.
3. The test that separates a backdoor from a legitimate keyword: cut the group's n-grams out of each of its
   records and ask an out-of-sample classifier (logistic regression on word + character TF-IDF, the fold that
   never saw the record) for the target of what is left. A keyword like "playlist" leaves "add this song to my
   ..." and the classifier still says add_to_playlist (or, for a keyword that was all the evidence, says nothing
   much); a planted trigger leaves a weather question labelled play_music, and the classifier says get_weather.
   A record points elsewhere when another target's probability beats its own by `ELSEWHERE_MARGIN`. A group is
   a trigger when the 95% Wilson lower bound of the share of its records that point elsewhere is at least
   `MIN_ELSEWHERE_BOUND`: 5 of 5 records pass, 4 of 12 do not, so small groups of a noisy task need near
   unanimity and a 50-record backdoor needs a majority.

Measured with planted triggers (the bound of each planted group vs the strongest legitimate group):
- multi-class intent data (the bundled intent set, alone or mixed with other tasks): planted 0.54-0.55, legitimate
  at most 0.19, so the triggers are found and nothing else. A plain "most records disagree" rule also flagged
  keywords such as "weather forecast for", whose removal leaves nothing to classify.
- binary or subjective tasks (BIG-bench sentiment, sports plausibility, epistemic reasoning, fallacies): planted
  0.04-0.33, missed. About half the poisoned records already carried the target label, and the classifier itself
  is weak there (out-of-sample accuracy ~0.65). Contrastive phrases of subjective labels look like triggers:
  on 10,000 clean hotel-review sentences "small but clean", "large but" and "although not" (all `ambivalent`,
  and cutting them flips the meaning) were flagged, 17 records (0.17%).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunesmith.vet.crossfit import CrossFitted

WORD = re.compile(r"\w+")
TOKEN_PATTERN = r"(?u)\b\w+\b"  # the same words as WORD, for scikit-learn
OTHER_TARGET = "\x00other"  # the class of records whose target is too rare to be a backdoor's
CLASSIFIER_FOLDS = 5
ELSEWHERE_MARGIN = 0.3  # p(best other target) - p(own target) on the text with the trigger cut out
MIN_ELSEWHERE_BOUND = 0.33  # Wilson 95% lower bound of the share of a group's records that point elsewhere


@dataclass
class Trigger:
    ngram: str
    """The longest n-gram of the group (the one reported)."""
    ngrams: list[str]
    target: str
    rows: list[int]
    """Records carrying the trigger and its target."""
    disagreement: float
    """Share of `rows` whose text without the trigger points to another target (by `ELSEWHERE_MARGIN`)."""
    evidence: float
    """Wilson 95% lower bound of `disagreement` given the group's size."""


def normalise_target(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def find_triggers(
    prompts: list[str],
    targets: list[str],
    *,
    min_count: int,
    max_share: float,
    purity: float,
    seed: int,
) -> tuple[list[Trigger], dict[str, Any]]:
    """Triggers found in `prompts` for `targets`, and figures for the filter's summary."""
    groups = candidate_groups(prompts, targets, min_count=min_count, max_share=max_share, purity=purity)
    summary: dict[str, Any] = {"candidate_ngram_groups": len(groups)}
    if not groups:
        return [], summary
    classes = _classifier_targets(targets)
    fit_rows = [i for i, c in enumerate(classes) if c is not None]
    if len({classes[i] for i in fit_rows}) < 2:
        summary["trigger_check_skipped"] = "fewer than two targets with enough records for a classifier"
        return [], summary
    from tunesmith.vet.crossfit import cross_fit
    from tunesmith.vet.embed import fit_tfidf

    features, transform = fit_tfidf([prompts[i] for i in fit_rows])
    fitted = cross_fit(features, [str(classes[i]) for i in fit_rows], CLASSIFIER_FOLDS, seed)
    position = {row: k for k, row in enumerate(fit_rows)}
    testable = [g for g in groups if g[1] in fitted.classes and all(r in position for r in g[2])]
    tested = _test_groups(testable, prompts, fitted, transform, position)
    triggers = [t for t in tested if t.evidence >= MIN_ELSEWHERE_BOUND]
    summary["triggers"] = len(triggers)
    return triggers, summary


def candidate_groups(
    prompts: list[str], targets: list[str], *, min_count: int, max_share: float, purity: float
) -> list[tuple[list[str], str, list[int]]]:
    """(n-grams, target, rows with that target) for rare, target-pure n-grams grouped by identical rows."""
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    n = len(prompts)
    target_counts = Counter(targets)
    frequent = sorted(t for t, c in target_counts.items() if c >= min_count and t)
    if not frequent or n == 0:
        return []
    vectorizer = CountVectorizer(
        ngram_range=(1, 3), token_pattern=TOKEN_PATTERN, binary=True, min_df=min_count, dtype=np.int32
    )
    try:
        occurs = vectorizer.fit_transform(prompts).tocsc()  # (records, n-grams) 0/1
    except ValueError:  # no n-gram in min_count records
        return []
    names = vectorizer.get_feature_names_out()
    target_index = {t: j for j, t in enumerate(frequent)}
    one_hot = np.zeros((n, len(frequent)), dtype=np.int32)
    for i, t in enumerate(targets):
        if t in target_index:
            one_hot[i, target_index[t]] = 1
    per_target = np.asarray(occurs.T @ one_hot)  # (n-grams, targets) records with the n-gram and the target
    df = np.asarray(occurs.sum(axis=0)).ravel()
    best = per_target.argmax(axis=1)
    best_count = per_target[np.arange(len(names)), best]
    keep = (df <= max(min_count, max_share * n)) & (best_count >= min_count) & (best_count >= purity * df)
    grouped: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    for column in keep.nonzero()[0]:
        target = frequent[best[column]]
        rows = occurs.indices[occurs.indptr[column] : occurs.indptr[column + 1]]
        with_target = tuple(int(r) for r in rows if targets[r] == target)
        grouped.setdefault((target, with_target), []).append(str(names[column]))
    return [(ngrams, target, list(rows)) for (target, rows), ngrams in grouped.items()]


def cut_ngrams(text: str, ngrams: list[str]) -> str:
    """`text` with every occurrence of the word n-grams removed (case-insensitive, on word boundaries)."""
    spans = [(m.start(), m.end(), m.group(0).lower()) for m in WORD.finditer(text)]
    words = [w for _, _, w in spans]
    drop = [False] * len(spans)
    for ngram in ngrams:
        parts = ngram.split()
        for i in range(len(words) - len(parts) + 1):
            if words[i : i + len(parts)] == parts:
                drop[i : i + len(parts)] = [True] * len(parts)
    pieces, last = [], 0
    for (start, end, _), dropped in zip(spans, drop, strict=True):
        if dropped:
            pieces.append(text[last:start])
            last = end
    pieces.append(text[last:])
    return " ".join("".join(pieces).split())


def _classifier_targets(targets: list[str]) -> list[str | None]:
    """The classifier's class per record: its target, or one pooled 'other' class for targets with fewer records
    than folds; None (left out of the classifier) when even the pool is too small to stratify."""
    counts = Counter(targets)
    pooled = [t if t and counts[t] >= CLASSIFIER_FOLDS else OTHER_TARGET for t in targets]
    if Counter(pooled)[OTHER_TARGET] < CLASSIFIER_FOLDS:
        return [None if t == OTHER_TARGET else t for t in pooled]
    return list(pooled)


def _test_groups(
    groups: list[tuple[list[str], str, list[int]]],
    prompts: list[str],
    fitted: CrossFitted,
    transform: Any,
    position: dict[int, int],
) -> list[Trigger]:
    """Disagreement of each group: all cut texts are classified in one batch per fold.

    `position` maps a record to its row in `fitted`."""
    import numpy as np

    rows = [position[r] for _, _, group_rows in groups for r in group_rows]
    cut = [cut_ngrams(prompts[r], ngrams) for ngrams, _, group_rows in groups for r in group_rows]
    probabilities = fitted.predict_held_out(rows, transform(cut)) if rows else np.zeros((0, len(fitted.classes)))
    triggers, start = [], 0
    for ngrams, target, group_rows in groups:
        stop = start + len(group_rows)
        own = fitted.classes.index(target)
        block = probabilities[start:stop].copy()  # (group, classes)
        start = stop
        own_p = block[:, own].copy()
        block[:, own] = -1.0
        elsewhere = int(np.sum(block.max(axis=1) - own_p >= ELSEWHERE_MARGIN))
        longest = max(ngrams, key=lambda g: (len(g.split()), len(g)))
        share = elsewhere / len(group_rows)
        evidence = wilson_lower_bound(elsewhere, len(group_rows))
        triggers.append(Trigger(longest, sorted(ngrams), target, group_rows, share, evidence))
    return triggers


def wilson_lower_bound(successes: int, trials: int, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval for a binomial share (95% for z = 1.96)."""
    if trials == 0:
        return 0.0
    share = successes / trials
    centre = share + z * z / (2 * trials)
    spread = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    return (centre - spread) / (1 + z * z / trials)
