"""The quality filter: each rule catches its case, names the value, and leaves normal text alone."""

from __future__ import annotations

import pytest

from tunesmith.config.vet_schema import QualityFilterConfig, VetConfig
from tunesmith.core.records import ChatRecord, LabelRecord, Message, Origin, PairRecord, Record
from tunesmith.vet.base import VetContext
from tunesmith.vet.filters.quality import QualityFilter, garbage_characters, longest_repeat
from tunesmith.vet.view import record_ids

ENGLISH = [
    "Could you add this song by Rod Argent to my evening playlist please?",
    "Book a table for three people at a steakhouse close to downtown tonight.",
    "What will the weather be like in Seattle on the fourteenth of June?",
    "Play something relaxing by Miles Davis from the fifties for me.",
    "I would like to rate this novel four out of six stars, thank you.",
    "Will it snow in Montana this weekend, or is it going to stay dry?",
]
FRENCH = "Ajoute cette chanson à ma liste de lecture du matin, s'il te plaît."


def _run(texts: list[str], **overrides: object) -> tuple[dict[str, str], QualityFilter]:
    records: list[Record] = [LabelRecord(t, "x", Origin("d", i + 1)) for i, t in enumerate(texts)]
    return _run_records(records, **overrides)


def _run_records(records: list[Record], **overrides: object) -> tuple[dict[str, str], QualityFilter]:
    config = VetConfig()
    quality = QualityFilterConfig(**overrides)  # type: ignore[arg-type]
    ids = record_ids(records)
    plugin = QualityFilter(quality)
    flags = plugin.run(VetContext(ids=ids, records=records, config=config))
    position = {rid: i for i, rid in enumerate(ids)}
    return {str(position[f.record_id]): f.reason for f in flags}, plugin


def test_clean_english_text_passes() -> None:
    reasons, plugin = _run(ENGLISH)
    assert reasons == {}
    assert plugin.summary["language"] == "en"
    assert plugin.summary["note"] == "all records pass"


def test_empty_short_and_long() -> None:
    reasons, plugin = _run([*ENGLISH, "   ", "k", "word " * 30], min_chars=2, max_chars=100)
    assert reasons == {
        "6": "empty: no text",
        "7": "too short: 1 characters (min_chars 2)",
        "8": "too long: 149 characters (max_chars 100)",
    }
    assert plugin.summary["rules"]["too_long"] == 1


def test_wrong_language_only_when_sure_and_long_enough() -> None:
    reasons, plugin = _run([*ENGLISH, FRENCH, "Merci beaucoup"])  # the short one has too few letters to judge
    assert list(reasons) == ["6"]
    assert reasons["6"].startswith("wrong language: fr (confidence ")
    assert reasons["6"].endswith("expected en")
    assert plugin.summary["rules"]["wrong_language"] == 1
    assert _run([*ENGLISH, FRENCH], min_language_confidence=1.01)[0] == {}  # never sure enough
    assert _run([*ENGLISH, FRENCH], language=None)[0] == {}
    assert _run([*ENGLISH, FRENCH], language="fr")[0].keys() == {str(i) for i in range(6)}


def test_auto_language_skips_data_without_a_majority() -> None:
    german = "Wie wird das Wetter morgen in Berlin und in München sein, weißt du das?"
    reasons, plugin = _run([ENGLISH[0], ENGLISH[1], FRENCH, german])
    assert reasons == {}
    assert "no majority language" in plugin.summary["language_note"]


def test_pair_records_are_judged_on_their_source_side() -> None:
    records: list[Record] = [PairRecord(t, FRENCH, Origin("d", i + 1)) for i, t in enumerate(ENGLISH)]
    assert _run_records(records)[0] == {}


def test_encoding_garbage() -> None:
    mojibake = "Iâ€™m at the cafÃ© now, itâ€™s nice"  # 8 of 35 characters are mojibake
    assert garbage_characters(mojibake) == 8
    assert garbage_characters("naïve café — déjà vu © 2024, “quoted”") == 0  # real accents and punctuation
    assert garbage_characters("tab\tand\nnewline\r") == 0
    assert garbage_characters("bad\x00\x07 byte \ufffd") == 3
    reasons, _ = _run([*ENGLISH, mojibake, "A fine sentence with one stray \ufffd replacement character in it."])
    assert list(reasons) == ["6"]
    assert reasons["6"] == (
        "encoding garbage: 8 of 35 characters (23%) are mojibake, U+FFFD or control characters (max_garbage_share 0.1)"
    )


def test_repeated_characters() -> None:
    assert longest_repeat("so good!!!!!!!!", 30) is None
    assert longest_repeat("A" * 31, 30) == ("A", 31)
    assert longest_repeat("ha" * 16, 30) == ("ha", 16)
    assert longest_repeat("ha" * 15, 30) is None
    assert longest_repeat("code:\n" + " " * 64 + "x", 30) is None  # indentation is not junk
    reasons, _ = _run([*ENGLISH, "nooo" + "o" * 40, "lol " + "ha" * 20])
    assert reasons == {
        "6": "repeated characters: 'o' x 43 (max_repeat_run 30)",
        "7": "repeated characters: 'ha' x 20 (max_repeat_run 30)",
    }


def test_several_rules_in_one_reason_and_chat_text() -> None:
    chat = ChatRecord((Message("user", "?" * 40), Message("assistant", "")), Origin("d", 1))
    reasons, plugin = _run_records([chat], min_chars=50)
    expected = "too short: 40 characters (min_chars 50); repeated characters: '?' x 40 (max_repeat_run 30)"
    assert reasons == {"0": expected}
    assert plugin.summary["rules"]["too_short"] == plugin.summary["rules"]["repeated_characters"] == 1


@pytest.mark.parametrize("text", ["Ok", "Yes please", "1234", "👍👍"])
def test_short_but_valid_utterances_pass(text: str) -> None:
    assert _run([*ENGLISH, text])[0] == {}


def test_spaced_emphasis_and_rules_are_not_repeated_characters() -> None:
    # reviews write emphasis as "! ! ! !" and e-mails draw rules as "- - - -": formatting, not junk
    assert longest_repeat("Great stay " + "! " * 40, 30) is None
    assert longest_repeat("Regards\n" + " -" * 62 + "\nJo", 30) is None
    assert longest_repeat("x" + "-_" * 20, 30) == ("-_", 20)
