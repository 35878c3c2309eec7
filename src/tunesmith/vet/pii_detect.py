"""Personal data in free text: our fast pattern + checksum layer, overlap resolution and redaction.

    spans = detect_pii("Mail jane@corp.com or call +44 20 7946 1234", min_score=0.5)
    redact(text, spans)                                   # 'Mail <EMAIL> or call <PHONE>'
    redact(text, spans, "pseudonymize", Pseudonymizer())  # consistent fake values per original value

The regex layer (always available, no model) finds EMAIL, PHONE, CREDIT_CARD (Luhn), IBAN (mod-97),
NATIONAL_ID (US SSN in issuable ranges, UK NINO), IP_ADDRESS (v4/v6, validated), URL_CREDENTIALS (the
`user:password` of a URL) and DATE_OF_BIRTH (a date near "born", "DOB", "date of birth", "birthday").
`engine="presidio"` (`tunesmith.vet.pii_presidio`, `pip install tunesmith[pii]`) adds PERSON, ORGANIZATION and
LOCATION. Placeholders like `<EMAIL>` match none of the patterns, so redacting redacted text changes nothing.

Scores: checksum-validated or unmistakable shapes score 0.85-0.95; numbers that could be anything (a bare
10-digit run, a 12-digit Luhn-valid number, an undashed 9-digit SSN) score below the default `min_score` 0.5
unless a cue word is near ("call", "card", "SSN", ...). Values that identify no one are skipped on purpose
(`pii_checks`): the `.example` domain, 555-01xx numbers, documentation IP ranges, never-issued SSN areas.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tunesmith.core.errors import ConfigError, Problem
from tunesmith.vet.pii_checks import (
    IBAN_LENGTHS,
    RESERVED_EMAIL_TLDS,
    digits_of,
    fictional_phone,
    is_card_number,
    is_iban,
    is_issuable_nino,
    is_issuable_ssn,
    personal_ip,
)

if TYPE_CHECKING:
    from tunesmith.vet.pii_pseudonyms import Pseudonymizer

# Structured types, strongest evidence first: on overlap the earlier type wins (a card number inside an IBAN
# is the IBAN; the password part of `user:pass@host` is not an email).
STRUCTURED_ENTITIES = (
    "URL_CREDENTIALS",
    "EMAIL",
    "IBAN",
    "CREDIT_CARD",
    "NATIONAL_ID",
    "IP_ADDRESS",
    "DATE_OF_BIRTH",
    "PHONE",
)
NER_ENTITIES = ("PERSON", "ORGANIZATION", "LOCATION")
ALL_ENTITIES = STRUCTURED_ENTITIES + NER_ENTITIES
_PRIORITY = {name: len(ALL_ENTITIES) - i for i, name in enumerate(ALL_ENTITIES)}

Engine = Literal["regex", "presidio"]
RedactMode = Literal["redact", "pseudonymize"]
PLACEHOLDER = re.compile(r"<[A-Z_]+>")


@dataclass(frozen=True)
class PiiSpan:
    """One detection: characters `start:end` of the text hold `text`, an `entity` found with `score` in [0, 1]."""

    start: int
    end: int
    entity: str
    score: float
    text: str


# --- email, URL credentials ------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.%+\-])[\w.%+\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,63})(?![\w\-])"
)
_URL_CREDENTIALS = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://([^\s:/@<>]+):([^\s/@<>]+)@(?=[\w\[])")
# passwords that are already masked or are template variables: no secret to hide
_MASKED_PASSWORD = re.compile(r"\*+|[xX]+|\$\{?[A-Z_][A-Z0-9_]*\}?|\{\{?\s*\w+\s*\}?\}|%\(\w+\)s")


def _find_emails(text: str) -> Iterator[PiiSpan]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        if m.group(1).lower() not in RESERVED_EMAIL_TLDS:
            yield PiiSpan(m.start(), m.end(), "EMAIL", 0.95, m.group())


def _find_url_credentials(text: str) -> Iterator[PiiSpan]:
    if "://" not in text:
        return
    for m in _URL_CREDENTIALS.finditer(text):
        if not _MASKED_PASSWORD.fullmatch(m.group(2)):
            yield PiiSpan(m.start(1), m.end(2), "URL_CREDENTIALS", 0.95, text[m.start(1) : m.end(2)])


# --- IBAN, payment cards, national ids ---------------------------------------------------------------------------

_IBAN = re.compile(r"\b([A-Z]{2})\d{2}(?: ?[A-Z0-9]){11,30}\b")


def _find_ibans(text: str) -> Iterator[PiiSpan]:
    pos = 0
    while m := _IBAN.search(text, pos):
        pos = m.end()
        length = IBAN_LENGTHS.get(m.group(1))
        end = _end_after_alnum(text, m.start(), m.end(), length) if length else None
        if end is None or (end < len(text) and text[end].isalnum()):
            continue  # the country's length ends inside a longer token
        if is_iban(text[m.start() : end].replace(" ", "")):
            pos = end
            yield PiiSpan(m.start(), end, "IBAN", 0.95, text[m.start() : end])


def _end_after_alnum(text: str, start: int, stop: int, count: int) -> int | None:
    """Index just past the `count`-th non-space character of `text[start:stop]` (spaces are grouping)."""
    seen = 0
    for i in range(start, stop):
        if text[i] != " ":
            seen += 1
            if seen == count:
                return i + 1
    return None


# a run of digit groups separated by single spaces or dashes; a run of more than 19 digits holds several numbers
_DIGIT_RUN = re.compile(r"(?<![\w\-.+])\d+(?:[ \-]\d+)*(?![\w\-]|\.\d)")
_CARD_MAX_DIGITS, _CARD_MIN_DIGITS_IN_RUN = 19, 14
# the digits of an IBAN with a wrong checksum (or of a pseudonym IBAN) are not a card number
_IBAN_HEAD = re.compile(r"\b[A-Z]{2}\d{2} ?$")
_CARD_CUE = re.compile(r"(?<!<)\b(?:card|cc|visa|mastercard|amex|maestro|credit|debit|pan)\b", re.I)


def _find_cards(text: str) -> Iterator[PiiSpan]:
    if not _at_least_digits(text, 12):
        return
    for m in _DIGIT_RUN.finditer(text):
        if len(m.group()) < 12 or _IBAN_HEAD.search(text, max(0, m.start() - 5), m.start()):
            continue
        for start, end in _card_numbers_in_run(m.group()):
            number = m.group()[start:end]
            start, end = m.start() + start, m.start() + end
            # 12-13 digits (Maestro, old Visa) are as often order or ticket numbers: they need a card word nearby
            score = 0.9 if len(digits_of(number)) >= 14 else 0.4
            # Luhn + issuer prefix + a card word is enough even across a sentence end ("Your card? 5018...")
            if score < 0.9 and _has_cue(text, start, end, _CARD_CUE, same_sentence=False):
                score = 0.85
            yield PiiSpan(start, end, "CREDIT_CARD", score, number)


def _card_numbers_in_run(run: str) -> Iterator[tuple[int, int]]:
    """Card numbers in a digit run: the whole run, or, when it is not one ('4111 1111 1111 1111 2024',
    'ref 12 4111 ...'), the longest valid pieces of 14-19 digits starting at a group."""
    if len(digits_of(run)) <= _CARD_MAX_DIGITS and is_card_number(digits_of(run)):
        yield 0, len(run)
        return
    groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", run)]
    cursor = 0
    for first, (start, _) in enumerate(groups):
        if start < cursor:
            continue
        longest, digits = None, 0
        for group_start, group_end in groups[first:]:  # at most 19 groups: a card has at most 19 digits
            digits += group_end - group_start
            if digits > _CARD_MAX_DIGITS:
                break
            if digits >= _CARD_MIN_DIGITS_IN_RUN and is_card_number(digits_of(run[start:group_end])):
                longest = group_end
        if longest is not None:
            yield start, longest
            cursor = longest


_SSN = re.compile(r"(?<![\w\-])(\d{3})([ \-]?)(\d{2})\2(\d{4})(?![\w\-])")
_SSN_CUE = re.compile(r"(?<!<)\b(?:ssn|ss#|social\s+security|soc\.?\s*sec|taxpayer|tax\s+id)", re.I)
_NINO = re.compile(r"\b([A-Z]{2}) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])\b")


def _find_national_ids(text: str) -> Iterator[PiiSpan]:
    if not _at_least_digits(text, 6):  # an SSN has 9, a NINO 6
        return
    for m in _SSN.finditer(text):
        if not is_issuable_ssn(m.group(1) + m.group(3) + m.group(4)):
            continue
        score = {"-": 0.85, " ": 0.6, "": 0.4}[m.group(2)]
        if _has_cue(text, m.start(), m.end(), _SSN_CUE):
            score = min(score + 0.3, 0.95)
        yield PiiSpan(m.start(), m.end(), "NATIONAL_ID", score, m.group())
    for m in _NINO.finditer(text):
        if is_issuable_nino("".join(m.groups())):
            yield PiiSpan(m.start(), m.end(), "NATIONAL_ID", 0.85, m.group())


# --- IP addresses ------------------------------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?:%\w+)?(?![\w:])"
)
# "version 1.2.3.4", "build 10.0.19041.1": four dotted numbers after these words are versions, not hosts
_VERSION_CUE = re.compile(r"\b(?:version|ver\.?|release|build|rev\.?|firmware|update|patch)\s*$", re.I)


def _find_ips(text: str) -> Iterator[PiiSpan]:
    if text.count(".") >= 3:
        for m in _IPV4.finditer(text):
            before = text[max(0, m.start() - 12) : m.start()]
            if personal_ip(m.group()) and not _VERSION_CUE.search(before):
                yield PiiSpan(m.start(), m.end(), "IP_ADDRESS", 0.9, m.group())
    if text.count(":") >= 2:
        for m in _IPV6.finditer(text):
            # real addresses carry a decimal digit; this keeps 'dead::beef'-like words out
            if any(c.isdigit() for c in m.group()) and personal_ip(m.group()):
                yield PiiSpan(m.start(), m.end(), "IP_ADDRESS", 0.9, m.group())


# --- dates of birth ----------------------------------------------------------------------------------------------

_BIRTH_CUE = re.compile(
    r"\b(?:born|birth\s*date|birthdate|date\s+of\s+birth|d\.?\s?o\.?\s?b\b\.?|birthday|b-day)", re.I
)
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_DATE = re.compile(
    rf"(?<![\w/.\-])(?:\d{{1,2}}[/.\-]\d{{1,2}}[/.\-](?:\d{{4}}|\d{{2}})"
    rf"|{_YEAR}[/.\-]\d{{1,2}}[/.\-]\d{{1,2}}"
    rf"|{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?"
    rf"|{_DAY}(?:\s+of)?\s+{_MONTH}(?:,?\s+{_YEAR})?)(?![\w/\-]|\.\d)",
    re.I,
)
_DOB_CUE_BEFORE, _DOB_CUE_AFTER = 60, 25


def _find_dates_of_birth(text: str) -> Iterator[PiiSpan]:
    """Each birth cue claims the first date after it, else the last date before it in its sentence. A noun cue
    ("date of birth", "DOB") may reach into the next sentence ("Your date of birth? It's 1 May 1990"); the verb
    "born" stays in its own ("born in Paris. Moved on 2020-01-05" is no date of birth)."""
    cues = list(_BIRTH_CUE.finditer(text))
    if not cues:
        return
    dates = [m for m in _DATE.finditer(text) if _plausible_numeric_date(m.group())]
    claimed: dict[int, re.Match[str]] = {}
    for cue in cues:
        lo, hi = _same_sentence(text, cue.start(), cue.end(), _DOB_CUE_AFTER, _DOB_CUE_BEFORE)
        if not cue.group().lower().startswith("born"):
            hi = min(len(text), cue.end() + _DOB_CUE_BEFORE)
        after = [d for d in dates if cue.end() <= d.start() and d.end() <= hi]
        before = [d for d in dates if lo <= d.start() and d.end() <= cue.start()]
        if after or before:
            date = after[0] if after else before[-1]
            claimed[date.start()] = date
    for date in sorted(claimed.values(), key=lambda d: d.start()):
        yield PiiSpan(date.start(), date.end(), "DATE_OF_BIRTH", 0.85, date.group())


def _plausible_numeric_date(date: str) -> bool:
    """Numeric dates need a month (1-12) in first or second place; textual dates passed the regex already."""
    parts = re.split(r"[/.\-]", date)
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return True
    a, b, c = (int(p) for p in parts)
    if len(parts[0]) == 4:  # year first: Y-M-D
        return 1 <= b <= 12 and 1 <= c <= 31
    return (1 <= a <= 12 and 1 <= b <= 31) or (1 <= b <= 12 and 1 <= a <= 31)


# --- phone numbers -----------------------------------------------------------------------------------------------

_PHONE = re.compile(
    r"(?<![\w+@/.\-])(?:\+|\(\+?)?\d[\d \-.()]{5,22}\d(?:\s?(?:x|ext\.?|extension)\s?\d{1,6})?(?![\w@]|[.\-]\d)",
    re.I,
)
_PHONE_EXTENSION = re.compile(r"\s?(?:x|ext\.?|extension)\s?\d{1,6}$", re.I)
_PHONE_CUE = re.compile(
    r"(?<!<)\b(?:phone|ph|tel|telephone|call|calls|calling|called|mobile|mob|cell|cellphone|fax|whatsapp|sms|text|"
    r"reach|contact|dial|ring|answering|message|messages|office|desk|landline|hotline)\b",
    re.I,
)
_DATE_INSIDE = re.compile(r"\d{4}[.\-]\d{1,2}[.\-]\d{1,2}|\d{1,2}[.\-]\d{1,2}[.\-]\d{4}")
_ISBN_CUE = re.compile(r"ISBN(?:-1[03])?:?\s*$", re.I)
# shapes that are dates, dotted quads, SSNs or decimals rather than phone numbers
_NOT_PHONE = re.compile(
    r"\d{1,2}[.\-]\d{1,2}[.\-]\d{2,4}|\d{4}[.\-]\d{1,2}[.\-]\d{1,2}|\d+(?:\.\d+){3}|\d{3}-\d{2}-\d{4}|\d+\.\d+"
)


def _find_phones(text: str) -> Iterator[PiiSpan]:
    if not _at_least_digits(text, 7):
        return
    for m in _PHONE.finditer(text):
        score = _phone_score(m.group())
        if score is None or _ISBN_CUE.search(text, max(0, m.start() - 12), m.start()):
            continue
        if _has_cue(text, m.start(), m.end(), _PHONE_CUE, before=40, after=15):
            score = min(score + 0.3, 0.95)
        yield PiiSpan(m.start(), m.end(), "PHONE", score, m.group())


def _phone_score(candidate: str) -> float | None:
    """How phone-like a digit run is from its shape alone; None when it cannot be a phone number."""
    main = _PHONE_EXTENSION.sub("", candidate)
    digits = digits_of(main)
    if not 7 <= len(digits) <= 15 or fictional_phone(digits) or not _phone_layout(main):
        return None
    groups = [g for g in re.split(r"[ \-.()+]+", main) if g]
    extension = 0.1 if main != candidate else 0.0
    if main.startswith(("+", "(+")) or digits.startswith("00"):
        return 0.8 + extension if len(digits) >= 8 else 0.45
    if "(" in main:
        return 0.75 + extension
    if len(groups) == 1:
        return 0.4 + extension if len(digits) in (10, 11) else 0.3
    if 10 <= len(digits) <= 12:
        return 0.65 + extension
    return 0.45 + extension if len(digits) < 10 else 0.4


def _phone_layout(main: str) -> bool:
    """False for layouts no phone number has: dates, dotted quads, decimals, columns of numbers in a table
    ('4 4 480 3 741 19'), citations ('126 ( 2016 ) 5')."""
    if main.count("(") != main.count(")") or "( " in main or " )" in main or _NOT_PHONE.fullmatch(main):
        return False
    if "  " in main or ("." in main and " " in main) or _DATE_INSIDE.search(main):
        return False
    groups = [g for g in re.split(r"[ \-.()+]+", main.replace("(0)", " ")) if g]
    return len(groups) <= 7 and sum(len(g) == 1 for g in groups) <= 1


def _at_least_digits(text: str, count: int) -> bool:
    """Cheap pre-check (ten C-level scans): most text holds too few digits for any number-shaped entity."""
    return sum(text.count(d) for d in "0123456789") >= count


_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n\s*\n")


def _has_cue(
    text: str, start: int, end: int, cue: re.Pattern[str], before: int = 40, after: int = 15, same_sentence: bool = True
) -> bool:
    """A cue word within `before` characters before or `after` characters after (in the same sentence)."""
    if same_sentence:
        lo, hi = _same_sentence(text, start, end, before, after)
    else:
        lo, hi = max(0, start - before), min(len(text), end + after)
    return bool(cue.search(text, lo, start) or cue.search(text, end, hi))


def _same_sentence(text: str, start: int, end: int, before: int, after: int) -> tuple[int, int]:
    """The window around `start:end`, cut at the sentence ends (or blank lines) nearest to the span."""
    lo = max(0, start - before)
    for m in _SENTENCE_END.finditer(text, lo, start):
        lo = m.end()
    stop = _SENTENCE_END.search(text, end, end + after)
    return lo, stop.start() if stop else min(len(text), end + after)


# --- the layer, overlaps, redaction ------------------------------------------------------------------------------

_FINDERS: dict[str, Callable[[str], Iterator[PiiSpan]]] = {
    "URL_CREDENTIALS": _find_url_credentials,
    "EMAIL": _find_emails,
    "IBAN": _find_ibans,
    "CREDIT_CARD": _find_cards,
    "NATIONAL_ID": _find_national_ids,
    "IP_ADDRESS": _find_ips,
    "DATE_OF_BIRTH": _find_dates_of_birth,
    "PHONE": _find_phones,
}


def detect_structured(text: str, entities: tuple[str, ...] = STRUCTURED_ENTITIES) -> list[PiiSpan]:
    """Every candidate of the regex layer, overlaps not yet resolved (min_score not applied)."""
    spans: list[PiiSpan] = []
    for entity in entities:
        if entity in _FINDERS:
            spans.extend(_FINDERS[entity](text))
    return spans


def detect_pii(
    text: str, engine: Engine = "regex", entities: list[str] | None = None, min_score: float = 0.5
) -> list[PiiSpan]:
    """Non-overlapping PII spans in `text`, sorted by start. `entities=None` means every type the engine knows."""
    wanted = check_entities(entities, engine)
    if engine == "presidio":
        from tunesmith.vet.pii_presidio import detect_with_presidio

        return detect_with_presidio(text, wanted, min_score)
    spans = [s for s in detect_structured(text, wanted) if s.score >= min_score]
    return resolve_overlaps(spans)


def check_entities(entities: list[str] | None, engine: str) -> tuple[str, ...]:
    """The entity types to look for; a ConfigError naming the fix for unknown ones or ones the engine lacks."""
    if engine not in ("regex", "presidio"):
        raise ConfigError([Problem("vet.pii.engine", None, f"unknown engine {engine!r}", "use regex or presidio")])
    known = ALL_ENTITIES if engine == "presidio" else STRUCTURED_ENTITIES
    if entities is None:
        return known
    problems = []
    for name in entities:
        if name in NER_ENTITIES and engine == "regex":
            problems.append(Problem("vet.pii.entities", None, f"{name} needs a name model", "set engine: presidio"))
        elif name not in ALL_ENTITIES:
            problems.append(Problem("vet.pii.entities", None, f"unknown entity {name!r}", f"known: {known}"))
    if problems:
        raise ConfigError(problems)
    return tuple(e for e in known if e in entities)


def resolve_overlaps(spans: list[PiiSpan]) -> list[PiiSpan]:
    """Keep one span wherever spans overlap: the stronger type, then the higher score, then the longer span."""
    ranked = sorted(spans, key=lambda s: (-_PRIORITY.get(s.entity, 0), -s.score, s.start - s.end, s.start))
    kept: list[PiiSpan] = []
    for span in ranked:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def redact(
    text: str, spans: list[PiiSpan], mode: RedactMode = "redact", pseudonyms: Pseudonymizer | None = None
) -> str:
    """`text` with each span replaced by `<ENTITY>` (redact) or by a consistent fake value (pseudonymize)."""
    if mode == "redact":
        pseudonyms = None
    elif pseudonyms is None:
        from tunesmith.vet.pii_pseudonyms import Pseudonymizer

        pseudonyms = Pseudonymizer()
    pieces, cursor = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < cursor:
            continue  # overlapping input: the earlier span already covers it
        pieces.append(text[cursor : span.start])
        original = text[span.start : span.end]
        pieces.append(pseudonyms.fake(span.entity, original) if pseudonyms is not None else f"<{span.entity}>")
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces)
