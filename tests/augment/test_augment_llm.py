"""Back-translation (tiny random Marian model), LLM paraphrase and synthetic examples (tiny random Llama).

Random models write nonsense, so these tests check the mechanics: what is sent, what comes back where, what is
kept exact, determinism, provenance; the quality gate is loosened so the nonsense gets through to be inspected.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tunesmith.augment.generation import clean_reply
from tunesmith.augment.provenance import augment_tag
from tunesmith.augment.runner import augment_records
from tunesmith.augment.translate import Seq2SeqTranslator, round_trip, split_protected
from tunesmith.config.augment_schema import AugmentConfig, AugmentQualityConfig
from tunesmith.config.schema import ModelConfig
from tunesmith.core.errors import ModelLoadError
from tunesmith.core.records import ChatRecord, LabelRecord, Message, Origin, Record
from tunesmith.vet.view import content_id

LOOSE = AugmentQualityConfig(
    language=None,
    label_drift=False,
    max_garbage_share=1.0,
    min_length_ratio=0.0,
    max_length_ratio=1000.0,
    near_duplicate_augmenters=[],
)
EDA_OFF = {
    name: dataclasses.replace(getattr(AugmentConfig(), name), enabled=False)
    for name in ("synonym", "insert", "delete", "swap")
}


def records() -> list[Record]:
    texts = [
        "play some jazz music now",
        "book a table for two",
        "email <EMAIL> the weather forecast",
        "find the movie schedule",
    ]
    return [LabelRecord(t, "music" if i % 2 else "other", Origin("f.jsonl", i + 1)) for i, t in enumerate(texts)]


def only(name: str, **block: object) -> AugmentConfig:
    enabled = dataclasses.replace(getattr(AugmentConfig(), name), enabled=True, max_new_tokens=6, **block)
    return AugmentConfig(multiplier=None, quality=LOOSE, **EDA_OFF, **{name: enabled})  # type: ignore[arg-type]


def test_split_protected_keeps_placeholders_and_spacing_out_of_translation() -> None:
    pieces = split_protected("Email <EMAIL> now, then call <PHONE_NUMBER>.")
    assert pieces == [
        (True, "Email"),
        (False, " "),
        (False, "<EMAIL>"),
        (False, " "),
        (True, "now, then call"),
        (False, " "),
        (False, "<PHONE_NUMBER>"),
        (False, "."),
    ]
    assert "".join(p for _, p in pieces) == "Email <EMAIL> now, then call <PHONE_NUMBER>."

    class Upper:
        def translate(self, texts, source, target, seed):  # type: ignore[no-untyped-def]
            return [t.upper() for t in texts]

    out = round_trip(["send <EMAIL> the file", "  <EMAIL>  "], Upper(), Upper(), "en", "de", seed=0)
    assert out == ["SEND <EMAIL> THE FILE", "  <EMAIL>  "]


def test_seq2seq_translator_loads_a_marian_folder_and_translates_deterministically(tiny_marian_dir: Path) -> None:
    translator = Seq2SeqTranslator.load(str(tiny_marian_dir), "cpu", batch_size=2, max_new_tokens=5)
    texts = ["book a table", "play jazz", "what is the weather like"]
    first = translator.translate(texts, "en", "de", seed=0)
    assert len(first) == 3 and all(isinstance(t, str) for t in first)
    assert translator.translate(texts, "en", "de", seed=0) == first
    with pytest.raises(ModelLoadError, match="forward_model"):
        Seq2SeqTranslator.load(str(tiny_marian_dir / "missing"))


def test_back_translation_augmenter_with_the_tiny_marian_model(tiny_marian_dir: Path) -> None:
    cfg = only("back_translation", forward_model=str(tiny_marian_dir), temperature=0.8)
    result = augment_records(records(), cfg, seed=0, model_config=ModelConfig(device="cpu"))
    assert result.records, result.report
    again = augment_records(records(), cfg, seed=0, model_config=ModelConfig(device="cpu"))
    assert [r.text for r in again.records] == [r.text for r in result.records]  # type: ignore[union-attr]
    by_id = {content_id(r): r for r in records()}
    for record in result.records:
        tag = augment_tag(record)
        assert tag is not None and tag.augmenter == "back_translation"
        assert record.label == by_id[tag.parent_id].label  # type: ignore[union-attr]
        assert ("<EMAIL>" in record.text) == ("<EMAIL>" in by_id[tag.parent_id].text)  # type: ignore[union-attr]


def test_paraphrase_keeps_chat_roles_and_assistant_answers(tiny_model_dir: Path) -> None:
    chat = ChatRecord(
        (
            Message("system", "be brief"),
            Message("user", "what is the capital of france"),
            Message("assistant", "Paris."),
            Message("user", "and of spain"),
            Message("assistant", "Madrid."),
        ),
        Origin("c.jsonl", 1),
    )
    cfg = only("paraphrase", model=str(tiny_model_dir), temperature=1.0, copies=3)
    result = augment_records([chat], cfg, seed=0, model_config=ModelConfig(device="cpu"))
    assert result.report["augmenters"]["paraphrase"]["jobs"] == 3
    assert result.records
    for record in result.records:
        assert isinstance(record, ChatRecord)
        assert [m.role for m in record.messages] == [m.role for m in chat.messages]
        assert [m.content for m in record.messages if m.role != "user"] == ["be brief", "Paris.", "Madrid."]
        assert record.messages[1].content != chat.messages[1].content


def test_synthetic_examples_keep_the_label_and_name_their_seed_examples(tiny_model_dir: Path) -> None:
    cfg = only("synthetic", model=str(tiny_model_dir), seed_examples=2, copies=2)
    result = augment_records(records(), cfg, seed=0, model_config=ModelConfig(device="cpu"))
    figures = result.report["augmenters"]["synthetic"]
    assert figures["jobs"] == 8 and figures["accepted"] == len(result.records) > 0
    by_id = {content_id(r): r for r in records()}
    for record, row in zip(result.records, result.provenance, strict=True):
        parent = by_id[row.parent_id]
        assert record.label == parent.label  # type: ignore[union-attr]
        assert len(row.other_parent_ids) == 1
        assert by_id[row.other_parent_ids[0]].label == parent.label  # type: ignore[union-attr]


def test_llm_translator_and_synthetic_chats(tiny_model_dir: Path) -> None:
    chat = ChatRecord(
        (Message("system", "be brief"), Message("user", "name a red fruit"), Message("assistant", "A cherry.")),
        Origin("c.jsonl", 1),
    )
    other = ChatRecord((Message("user", "name a green vegetable"), Message("assistant", "Peas.")), Origin("c.jsonl", 2))
    cfg = only("back_translation", translator="llm", llm_model=str(tiny_model_dir))
    translated = augment_records([chat, other], cfg, seed=0, model_config=ModelConfig(device="cpu"))
    assert translated.report["augmenters"]["back_translation"]["jobs"] == 2
    assert all(r.messages[-1].content in ("A cherry.", "Peas.") for r in translated.records)  # type: ignore[union-attr]
    synthetic = augment_records(
        [chat, other], only("synthetic", model=str(tiny_model_dir)), seed=0, model_config=ModelConfig(device="cpu")
    )
    assert synthetic.records
    for record, row in zip(synthetic.records, synthetic.provenance, strict=True):
        assert isinstance(record, ChatRecord)
        roles = [m.role for m in record.messages]
        assert roles == (
            ["system", "user", "assistant"] if row.parent_id == content_id(chat) else ["user", "assistant"]
        )


def test_clean_reply_strips_lead_ins_and_wrapping_quotes() -> None:
    assert clean_reply('Here is the paraphrase: "Play jazz now."') == "Play jazz now."
    assert clean_reply("Sure! Here's the rewritten text:\nbook a table") == "book a table"
    assert clean_reply('He said "hi" to me') == 'He said "hi" to me'
