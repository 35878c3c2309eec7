"""PII: each entity caught on crafted cases, near-misses left alone, redaction, pseudonyms, idempotence, the
filter's flags and summary, config errors, and the presidio engine (names, no network, missing dependency)."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from tunesmith.config.vet_schema import PiiFilterConfig, VetConfig
from tunesmith.core.errors import ConfigError, DependencyError
from tunesmith.core.records import ChatRecord, CompletionRecord, LabelRecord, Message, Origin
from tunesmith.vet.base import VetContext
from tunesmith.vet.filters.pii import PiiFilter
from tunesmith.vet.pii_detect import detect_pii, redact
from tunesmith.vet.pii_pseudonyms import Pseudonymizer
from tunesmith.vet.view import full_text, record_ids

CAUGHT = [
    ("write to jane.doe+news@corp.co.uk today", "EMAIL", "jane.doe+news@corp.co.uk"),
    ("call me on +44 20 7946 1234 tonight", "PHONE", "+44 20 7946 1234"),
    ("office: (212) 555-1234", "PHONE", "(212) 555-1234"),
    ("reach me at 06 12 34 56 78 please", "PHONE", "06 12 34 56 78"),
    ("mobile 2125551234", "PHONE", "2125551234"),
    ("Tel. +49 (0) 30 1234567 ext. 12", "PHONE", "+49 (0) 30 1234567 ext. 12"),
    ("card 4111 1111 1111 1111 exp 12/27", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("amex 3782-822463-10005", "CREDIT_CARD", "3782-822463-10005"),
    ("card 4111 1111 1111 1111 2027 on file", "CREDIT_CARD", "4111 1111 1111 1111"),  # a run of two numbers
    ("ref 12 4111 1111 1111 1111", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("pay to DE89 3704 0044 0532 0130 00 now", "IBAN", "DE89 3704 0044 0532 0130 00"),
    ("IBAN GB82WEST12345698765432.", "IBAN", "GB82WEST12345698765432"),
    ("SSN 536-22-1234", "NATIONAL_ID", "536-22-1234"),
    ("my ssn is 536221234", "NATIONAL_ID", "536221234"),
    ("NI number AB 12 34 56 C", "NATIONAL_ID", "AB 12 34 56 C"),
    ("login from 81.2.69.142 failed", "IP_ADDRESS", "81.2.69.142"),
    ("client fe80::1ff:fe23:4567:890a dropped", "IP_ADDRESS", "fe80::1ff:fe23:4567:890a"),
    ("via 2a00:1450:4001:82a::200e.", "IP_ADDRESS", "2a00:1450:4001:82a::200e"),
    ("db: postgres://admin:s3cr3t!@db.internal:5432/app", "URL_CREDENTIALS", "admin:s3cr3t!"),
    ("She was born on March 29, 1982 in Leeds.", "DATE_OF_BIRTH", "March 29, 1982"),
    ("DOB: 29.03.1982", "DATE_OF_BIRTH", "29.03.1982"),
    ("What is your date of birth? It's 1982-03-29", "DATE_OF_BIRTH", "1982-03-29"),
    ("1982-03-29 (birthday)", "DATE_OF_BIRTH", "1982-03-29"),
]

NOT_CAUGHT = [
    "card 4111 1111 1111 1112 (Luhn fails)",
    "IBAN DE89 3704 0044 0532 0130 01 has a bad checksum",
    "address 999.1.1.1 is not an IP",
    "upgrade to version 1.2.3.4 today",
    "loopback 127.0.0.1 and ::1 and docs range 192.0.2.7",
    "ssn 900-12-3456 is an ITIN area, 666-12-3456 never issued",
    "NINO ZZ 12 34 56 A is an administrative placeholder",
    "order 584604014822 shipped",
    "ticket 2125551234 was closed",
    "fictional (212) 555-0147 from a film",
    "meeting on 2024-01-05 at 10:30",
    "born in Paris. Moved on 2020-01-05.",
    "mail jo@mail.example about it",
    "connect with postgres://admin:****@db:5432/app or https://u:${DB_PASSWORD}@h/x",
    "pi is 3.14159265 and the years were 1990-2020",
    "the price is 1 234 567 EUR",
    "std::vector and dead::beef and 12:30:45",
    "MAC 00:1A:2B:3C:4D:5E",
    "Hotels Group PLC 4 4 480 3 741 19 , 6 % 658 348",  # a table row, from real review data
    "Archives of Internal Medicine vol . 126 ( 2016 ) 5 , s . 313 - 320",
    "day 2013-09-21 00 : 03 : 34 bought them, call later",
    "means 0.071  0.223  0.135",
    "ISBN 0-471-22361-1",
]


@pytest.mark.parametrize(("text", "entity", "value"), CAUGHT)
def test_each_entity_is_caught_with_its_exact_span(text: str, entity: str, value: str) -> None:
    spans = detect_pii(text)
    assert [(s.entity, s.text) for s in spans] == [(entity, value)]
    assert text[spans[0].start : spans[0].end] == value


@pytest.mark.parametrize("text", NOT_CAUGHT)
def test_near_misses_are_not_caught(text: str) -> None:
    assert detect_pii(text) == []


def test_overlaps_resolve_to_the_stronger_type() -> None:
    spans = detect_pii("ftp://bob:pw9@files.example.org and DE89 3704 0044 0532 0130 00")
    assert [s.entity for s in spans] == ["URL_CREDENTIALS", "IBAN"]  # not an email 'pw9@...', not a card inside


def test_redaction_puts_typed_placeholders() -> None:
    text = "Mail jane@corp.com, call +1 415-555-2671, card 4111111111111111, ip 81.2.69.142."
    assert redact(text, detect_pii(text)) == "Mail <EMAIL>, call <PHONE>, card <CREDIT_CARD>, ip <IP_ADDRESS>."


def test_entities_and_min_score_narrow_detection() -> None:
    text = "jane@corp.com, 81.2.69.142, order 2125551234"
    assert [s.entity for s in detect_pii(text, entities=["IP_ADDRESS"])] == ["IP_ADDRESS"]
    assert [s.entity for s in detect_pii(text, min_score=0.92)] == ["EMAIL"]  # emails 0.95, IPs 0.9
    assert [s.entity for s in detect_pii(text, min_score=0.3)][-1] == "PHONE"  # a bare number, no phone word


def test_bad_entity_names_and_engines_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown entity 'EMAILS'"):
        detect_pii("x", entities=["EMAILS"])
    with pytest.raises(ConfigError, match="set engine: presidio"):
        detect_pii("x", entities=["PERSON"])
    with pytest.raises(ConfigError, match="unknown engine"):
        detect_pii("x", engine="spacy")  # type: ignore[arg-type]


def test_pseudonyms_are_consistent_per_value_and_not_detected_again() -> None:
    pseudonyms = Pseudonymizer(seed=7)
    text = (
        "jane@corp.com, +44 20 7946 1234, 4111 1111 1111 1111, DE89 3704 0044 0532 0130 00, 536-22-1234, "
        "AB 12 34 56 C, 81.2.69.142, fe80::1ff:fe23:4567:890a, postgres://admin:s3cret@db/app"
    )
    spans = detect_pii(text)
    assert len(spans) == 9
    fake = redact(text, spans, "pseudonymize", pseudonyms)
    assert detect_pii(fake) == []  # fakes come from ranges that identify no one
    assert redact(text, spans, "pseudonymize", Pseudonymizer(seed=7)) == fake  # stable for a seed
    assert pseudonyms.fake("EMAIL", "JANE@corp.com") == pseudonyms.fake("EMAIL", "jane@corp.com")
    assert pseudonyms.fake("PHONE", "+44 20 7946 1234") == pseudonyms.fake("PHONE", "+44 (20) 7946-1234")
    assert pseudonyms.fake("EMAIL", "jane@corp.com") != pseudonyms.fake("EMAIL", "john@corp.com")
    assert Pseudonymizer(seed=8).fake("EMAIL", "jane@corp.com") != pseudonyms.fake("EMAIL", "jane@corp.com")


def test_redacting_redacted_text_changes_nothing() -> None:
    texts = [t for t, _, _ in CAUGHT] + NOT_CAUGHT
    try:
        from tunesmith.vet.pii_eval import generate_samples

        texts += [s.text for s in generate_samples(seed=5, per_type=10, repeats=1)]
    except DependencyError:
        pass  # faker / presidio-evaluator templates not installed: the crafted texts still run
    for text in texts:
        once = redact(text, detect_pii(text))
        assert detect_pii(once) == [], once


def test_pathological_inputs_stay_fast() -> None:
    texts = ["1 " * 20_000, "a@" * 20_000, "." * 40_000, "a." * 20_000 + "@", "A1" * 20_000, ":" * 40_000]
    start = time.perf_counter()
    for text in texts:
        detect_pii(text)
    assert time.perf_counter() - start < 5.0


# --- the filter --------------------------------------------------------------------------------------------------


def _records() -> list:
    origin = Origin("data.jsonl", 1)
    return [
        LabelRecord("contact jane@corp.com or +44 20 7946 1234", "jane@corp.com", origin),
        CompletionRecord("My card is 4111 1111 1111 1111", "Noted, jane@corp.com.", origin, system="be kind"),
        ChatRecord((Message("user", "server 81.2.69.142 is down"), Message("assistant", "ok")), origin),
        LabelRecord("nothing personal here", "none", origin),
    ]


def _run(action: str, records: list | None = None, **config: object) -> tuple[PiiFilter, list]:
    records = records if records is not None else _records()
    plugin = PiiFilter(PiiFilterConfig(action=action, **config))  # type: ignore[arg-type]
    flags = plugin.run(VetContext(ids=record_ids(records), records=records, config=VetConfig(), seed=3))
    return plugin, flags


def test_filter_redacts_counts_entities_and_leaves_labels_alone() -> None:
    records = _records()
    plugin, flags = _run("redact", records)
    assert [f.action for f in flags] == ["modify"] * 3
    assert [f.details["entities"] for f in flags] == [
        {"EMAIL": 1, "PHONE": 1},
        {"CREDIT_CARD": 1, "EMAIL": 1},
        {"IP_ADDRESS": 1},
    ]
    first = flags[0].replacement
    assert isinstance(first, LabelRecord)
    assert first.text == "contact <EMAIL> or <PHONE>" and first.label == "jane@corp.com"  # a label is a category
    assert full_text(flags[1].replacement) == "be kind\nMy card is <CREDIT_CARD>\nNoted, <EMAIL>."
    assert flags[0].reason == "personal data redacted: 1 EMAIL, 1 PHONE"
    assert plugin.summary == {
        "engine": "regex",
        "entities": {"CREDIT_CARD": 1, "EMAIL": 2, "IP_ADDRESS": 1, "PHONE": 1},
        "records_with_pii": 3,
    }
    assert PiiFilter.statistical is False


def test_vetting_vetted_records_changes_nothing() -> None:
    _, flags = _run("redact")
    vetted = [f.replacement for f in flags]
    plugin, again = _run("redact", vetted)
    assert again == [] and plugin.summary["records_with_pii"] == 0


def test_filter_pseudonymizes_consistently_across_records() -> None:
    _, flags = _run("pseudonymize")
    label_text = flags[0].replacement.text  # type: ignore[union-attr]
    completion = flags[1].replacement.completion  # type: ignore[union-attr]
    fake_email = label_text.split()[1]
    assert fake_email.endswith(".example") and fake_email in completion  # the same fake in both records
    assert "<" not in label_text


def test_filter_remove_and_flag_actions() -> None:
    _, removed = _run("remove")
    assert [f.action for f in removed] == ["remove"] * 3 and all(f.replacement is None for f in removed)
    _, flagged = _run("flag", entities=["IP_ADDRESS"])
    assert [(f.action, f.details["entities"]) for f in flagged] == [("flag", {"IP_ADDRESS": 1})]


def test_filter_config_errors() -> None:
    with pytest.raises(ConfigError, match="set engine: presidio"):
        PiiFilter(PiiFilterConfig(entities=["PERSON"]))
    with pytest.raises(ConfigError, match="min_score"):
        PiiFilter(PiiFilterConfig(min_score=2.0))


# --- evaluation set ----------------------------------------------------------------------------------------------


def test_generated_evaluation_set_has_exact_gold_spans() -> None:
    pytest.importorskip("faker")
    from tunesmith.vet.pii_eval import GOLD_OF_SLOT, generate_samples

    try:
        samples = generate_samples(seed=2, per_type=10, repeats=1)
    except DependencyError:
        pytest.skip("presidio-evaluator's templates are not installed")
    assert [s.text for s in samples] == [s.text for s in generate_samples(seed=2, per_type=10, repeats=1)]
    found = {g.entity for s in samples for g in s.gold}
    assert found == set(GOLD_OF_SLOT.values())
    creds = [s.text[g.start : g.end] for s in samples for g in s.gold if g.entity == "URL_CREDENTIALS"]
    assert all(":" in c and "@" not in c and "/" not in c for c in creds)


# --- presidio ----------------------------------------------------------------------------------------------------


def test_missing_presidio_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from tunesmith.vet import pii_presidio

    pii_presidio.presidio_analyzer.cache_clear()
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)  # imports fail as if not installed
    monkeypatch.setitem(sys.modules, "spacy", None)
    try:
        with pytest.raises(DependencyError, match=r"pip install tunesmith\[pii\]"):
            detect_pii("Jane Doe", engine="presidio")
    finally:
        pii_presidio.presidio_analyzer.cache_clear()


@pytest.fixture()
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every connection or DNS lookup is recorded and refused."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_the_network_guard_sees_tldextract_fetching(network_attempts: list[object]) -> None:
    tldextract = pytest.importorskip("tldextract")
    tldextract.TLDExtract(cache_dir=None)("mail.example.co.uk")  # the default extractor fetches the suffix list
    assert network_attempts


def test_presidio_engine_adds_names_without_network(network_attempts: list[object]) -> None:
    """One test for everything that needs the model, so spaCy loads once (4-5 s on an idle 2-core machine)."""
    pytest.importorskip("presidio_analyzer")
    spacy = pytest.importorskip("spacy")
    from tunesmith.vet import pii_presidio

    if not spacy.util.is_package(pii_presidio.SPACY_MODEL):
        pytest.skip(f"{pii_presidio.SPACY_MODEL} is not installed")
    pii_presidio.presidio_analyzer.cache_clear()  # built under the guard
    text = "My name is John Smith, I work for Microsoft in Paris. Email john.smith@gmail.com or call 212-555-1234."
    spans = detect_pii(text, engine="presidio")
    found = {(s.entity, s.text) for s in spans}
    assert {("PERSON", "John Smith"), ("ORGANIZATION", "Microsoft"), ("LOCATION", "Paris")} <= found
    assert {("EMAIL", "john.smith@gmail.com"), ("PHONE", "212-555-1234")} <= found  # ours win the overlap
    alone = pii_presidio.detect_presidio_only(text)
    assert ("EMAIL", "john.smith@gmail.com") in {(s.entity, s.text) for s in alone}  # email validated offline
    redacted = redact(text, spans)
    assert "John" not in redacted and "<PERSON>" in redacted
    assert detect_pii(redacted, engine="presidio") == []  # placeholders are not names
    assert detect_pii("Dear Noortje Wunderink, thanks", engine="presidio")[0].text == "Noortje Wunderink"
    assert network_attempts == []
