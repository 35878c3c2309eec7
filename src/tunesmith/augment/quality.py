"""The quality gate: which augmented candidates may join the training split, and why the others may not.

Checks, cheapest first; the first that fails names the drop reason:

- `placeholders_changed`: its placeholders (`<EMAIL>` ...) differ from its parent's;
- `exact_duplicate`: its normalised text (and label) equals an original's or an accepted candidate's;
- `heldout_overlap`: its prompt equals or near-duplicates a validation/test record's (a leak into evaluation);
- `length`: its changed text is shorter / longer than `min_length_ratio` / `max_length_ratio` x the parent's;
- `garbage`: over `max_garbage_share` of its text is control or U+FFFD characters (broken decoding);
- `language`: the detector is at least `min_language_confidence` sure it is in another language;
- `label_drift`: a TF-IDF + logistic-regression classifier of the originals gives another label at least
  `drift_min_confidence` (and more than the given label);
- `near_duplicate`: (generative augmenters only) it near-duplicates a training record or an accepted candidate.

The vetting filters run after all rounds (`runner`), on originals and accepted candidates together.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tunesmith.augment.base import Candidate
from tunesmith.augment.ops import placeholders
from tunesmith.config.augment_schema import AugmentQualityConfig
from tunesmith.core.records import LabelRecord, Record
from tunesmith.data.neardup import NearDupIndex, jaccard, shingles
from tunesmith.data.rows import record_to_row
from tunesmith.data.split import normalise_text, prompt_key
from tunesmith.vet.filters.quality import detect_languages
from tunesmith.vet.view import full_text, label_of, prompt_text

LANGUAGE_SAMPLE = 300
"""Originals whose language is detected to find the majority language (`language: auto`)."""
MIN_DRIFT_RECORDS_PER_LABEL = 2


def garbage_share(text: str) -> float:
    """Share of characters that are control characters (other than newline and tab) or U+FFFD."""
    bad = sum(1 for ch in text if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in "\n\t\r"))
    return bad / max(len(text), 1)


def duplicate_key(record: Record) -> str:
    """Records with the same key are exact duplicates: normalised text of every field, and the label."""
    return f"{normalise_text(full_text(record))}\x00{label_of(record) or ''}"


def changed_texts(candidate: Record, parent: Record) -> tuple[str, str]:
    """(parent text, candidate text) over the fields that differ (for chats: the turns that differ)."""
    before, after = _text_fields(parent), _text_fields(candidate)
    if len(before) != len(after):  # synthetic chats may have another shape: compare the prompt sides
        return prompt_text(parent), prompt_text(candidate)
    pairs = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    return "\n".join(b for b, _ in pairs), "\n".join(a for _, a in pairs)


def _text_fields(record: Record) -> list[str]:
    row = record_to_row(record)
    if "messages" in row:
        return [turn["content"] for turn in row["messages"]]
    return [str(value) for key, value in sorted(row.items()) if key not in ("label", "group")]


class QualityGate:
    """Screens candidates against the originals and the held-out records; remembers what was accepted."""

    def __init__(
        self,
        config: AugmentQualityConfig,
        originals: Sequence[Record],
        ids: Sequence[str],
        heldout: Sequence[Record] = (),
    ):
        self.config = config
        self.by_id = dict(zip(ids, originals, strict=True))
        self.keys = {duplicate_key(r) for r in originals}
        self.heldout_keys = {prompt_key(r) for r in heldout}
        threshold = config.near_duplicate_threshold
        self.heldout_index = NearDupIndex([prompt_text(r) for r in heldout], threshold) if heldout else None
        self.train_index = NearDupIndex([full_text(r) for r in originals], threshold)
        self.accepted_shingles: list[frozenset[str]] = []
        self.language = _majority_language(originals) if config.language == "auto" else config.language
        self.classifier = _label_classifier(originals) if config.label_drift else None

    def screen(self, candidates: Sequence[Candidate]) -> list[str | None]:
        """A drop reason per candidate, or None where every check passes (acceptance is `accept`'s decision)."""
        reasons: list[str | None] = [self._static_reason(c) for c in candidates]
        self._batch_check(candidates, reasons, "heldout_overlap", self._heldout_near)
        if self.language:
            self._batch_check(candidates, reasons, "language", self._wrong_language)
        if self.classifier is not None:
            self._batch_check(candidates, reasons, "label_drift", self._drifted)
        near = set(self.config.near_duplicate_augmenters)
        self._batch_check(
            candidates,
            reasons,
            "near_duplicate",
            lambda cs: [c.augmenter in near and v for c, v in zip(cs, self._train_near(cs), strict=True)],
        )
        return reasons

    def accept(self, candidate: Candidate) -> str | None:
        """Accept a screened candidate unless it duplicates one accepted before; returns the drop reason if not."""
        key = duplicate_key(candidate.record)
        if key in self.keys:
            return "exact_duplicate"
        tracked = candidate.augmenter in self.config.near_duplicate_augmenters
        grams = shingles(full_text(candidate.record)) if tracked else frozenset()
        threshold = self.config.near_duplicate_threshold
        if tracked and any(jaccard(grams, other) >= threshold for other in self.accepted_shingles):
            return "near_duplicate"
        self.keys.add(key)
        if tracked:
            self.accepted_shingles.append(grams)
        return None

    def _static_reason(self, candidate: Candidate) -> str | None:
        record, parent = candidate.record, candidate.job.parent
        if candidate.augmenter != "synthetic" and Counter(placeholders(full_text(record))) != Counter(
            placeholders(full_text(parent))
        ):
            return "placeholders_changed"
        if duplicate_key(record) in self.keys:
            return "exact_duplicate"
        if prompt_key(record) in self.heldout_keys:
            return "heldout_overlap"
        if not self._length_ok(candidate):
            return "length"
        if garbage_share(full_text(record)) > self.config.max_garbage_share:
            return "garbage"
        return None

    def _length_ok(self, candidate: Candidate) -> bool:
        if candidate.augmenter == "synthetic":
            shown = [candidate.job.parent] + [self.by_id[i] for i in candidate.other_parent_ids if i in self.by_id]
            reference = sum(len(prompt_text(r)) for r in shown) / len(shown)
            new = prompt_text(candidate.record)
        else:
            before, new = changed_texts(candidate.record, candidate.job.parent)
            reference = len(before)
        if not new.strip():
            return False
        ratio = len(new) / max(reference, 1)
        return self.config.min_length_ratio <= ratio <= self.config.max_length_ratio

    @staticmethod
    def _batch_check(candidates: Sequence[Candidate], reasons: list[str | None], reason: str, check: Any) -> None:
        """Run a batched check on the candidates still passing; True marks a failure."""
        todo = [i for i, r in enumerate(reasons) if r is None]
        if not todo:
            return
        for i, failed in zip(todo, check([candidates[i] for i in todo]), strict=True):
            if failed:
                reasons[i] = reason

    def _heldout_near(self, candidates: Sequence[Candidate]) -> list[bool]:
        if self.heldout_index is None:
            return [False] * len(candidates)
        return [bool(hits) for hits in self.heldout_index.query_many([prompt_text(c.record) for c in candidates])]

    def _train_near(self, candidates: Sequence[Candidate]) -> list[bool]:
        return [bool(hits) for hits in self.train_index.query_many([full_text(c.record) for c in candidates])]

    def _wrong_language(self, candidates: Sequence[Candidate]) -> list[bool]:
        texts = [
            changed_texts(c.record, c.job.parent)[1] if c.augmenter != "synthetic" else prompt_text(c.record)
            for c in candidates
        ]
        found = detect_languages(texts)
        limit = self.config.min_language_confidence
        return [lang != self.language and score >= limit for lang, score in found]

    def _drifted(self, candidates: Sequence[Candidate]) -> list[bool]:
        assert self.classifier is not None
        vectorizer, model = self.classifier
        labels = [label_of(c.record) for c in candidates]
        texts = [c.record.text if isinstance(c.record, LabelRecord) else "" for c in candidates]
        probabilities = model.predict_proba(vectorizer.transform(texts))  # (candidates, labels)
        classes = list(model.classes_)
        limit = self.config.drift_min_confidence
        drifted = []
        for label, row in zip(labels, probabilities, strict=True):
            if label is None:
                drifted.append(False)
                continue
            given = row[classes.index(label)] if label in classes else 0.0
            best = int(row.argmax())
            drifted.append(bool(classes[best] != label and row[best] >= limit and row[best] > given))
        return drifted


def _majority_language(records: Sequence[Record]) -> str | None:
    texts = [prompt_text(r) for r in records[:LANGUAGE_SAMPLE]]
    counts = Counter(lang for lang, _ in detect_languages(texts) if lang)
    return counts.most_common(1)[0][0] if counts else None


def _label_classifier(records: Sequence[Record]) -> tuple[Any, Any] | None:
    """TF-IDF (words) + logistic regression on the originals; None when there is too little to learn."""
    labelled = [r for r in records if isinstance(r, LabelRecord)]
    counts = Counter(r.label for r in labelled)
    if len(counts) < 2 or min(counts.values()) < MIN_DRIFT_RECORDS_PER_LABEL:
        return None
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(sublinear_tf=True)
    features = vectorizer.fit_transform([r.text for r in labelled])
    # newton-cg: 5 iterations here where lbfgs needs ~30 (and is slowed tenfold by a busy BLAS)
    model = LogisticRegression(C=10.0, solver="newton-cg", max_iter=100)
    model.fit(features, [r.label for r in labelled])
    return vectorizer, model
