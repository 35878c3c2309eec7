"""Chat-aware slots (user turns by default, roles and order intact) and provenance tags."""

from __future__ import annotations

import random

from tunesmith.augment import ops
from tunesmith.augment.augmenters.swap import SwapAugmenter
from tunesmith.augment.base import AugmentContext, Job
from tunesmith.augment.provenance import AugmentTag, augment_tag, is_augmented, tag_record
from tunesmith.augment.slots import map_slots, slot_texts
from tunesmith.config.augment_schema import AugmentConfig, SwapAugConfig
from tunesmith.core.records import ChatRecord, CompletionRecord, LabelRecord, Message, Origin, PairRecord
from tunesmith.vet.view import content_id

CHAT = ChatRecord(
    (
        Message("system", "You are a helpful booking assistant for restaurants."),
        Message("user", "Please book a table for four people at the Italian place tonight, email <EMAIL>."),
        Message("assistant", "Done: a table for four at eight tonight; the confirmation goes to <EMAIL>."),
        Message("user", "Can you also find a quiet cinema showing an animated movie nearby?"),
        Message("tool", "cinema results list with three entries", name="search"),
        Message("assistant", "The Rex shows an animated film at nine."),
    ),
    Origin("chats.jsonl", 3),
)


def swap(text: str) -> str:
    return ops.random_swap(text, random.Random(0), rate=0.3)


def test_chat_user_turns_change_assistant_and_roles_stay_exact() -> None:
    out = map_slots(CHAT, swap, roles=["user"], fields=["input"])
    assert isinstance(out, ChatRecord)
    assert [m.role for m in out.messages] == [m.role for m in CHAT.messages]
    assert [m.name for m in out.messages] == [m.name for m in CHAT.messages]
    for before, after in zip(CHAT.messages, out.messages, strict=True):
        if before.role == "user":
            assert after.content != before.content
        else:
            assert after.content == before.content
    assert "<EMAIL>" in out.messages[1].content.split(" ")[-1] or "<EMAIL>." in out.messages[1].content
    assert out.origin == CHAT.origin  # the runner retags; slots never touch the origin


def test_assistant_answers_change_only_when_asked() -> None:
    out = map_slots(CHAT, swap, roles=["assistant"], fields=["input"])
    assert isinstance(out, ChatRecord)
    changed = [i for i, (a, b) in enumerate(zip(CHAT.messages, out.messages, strict=True)) if a != b]
    assert changed == [2, 5]


def test_fields_of_other_records_and_labels_never_change() -> None:
    label = LabelRecord("book a table for two tonight please", "book_restaurant", Origin("f", 1), group="g")
    out = map_slots(label, swap, ["user"], ["input", "output"])
    assert isinstance(out, LabelRecord) and out.label == "book_restaurant" and out.group == "g"
    assert out.text != label.text
    completion = CompletionRecord("write a short poem about the sea", "the sea is wide and blue", Origin("f", 2), "sys")
    only_input = map_slots(completion, swap, ["user"], ["input"])
    assert isinstance(only_input, CompletionRecord)
    assert only_input.prompt != completion.prompt
    assert (only_input.completion, only_input.system) == (completion.completion, completion.system)
    pair = PairRecord("the cat sat on the mat", "le chat", Origin("f", 3))
    assert [k for k, _ in slot_texts(pair, ["user"], ["output"])] == ["target"]


def test_swap_augmenter_uses_the_block_roles_over_the_defaults() -> None:
    cfg = AugmentConfig(roles=["user"])
    ctx = AugmentContext(cfg, [CHAT], [content_id(CHAT)], seed=0)
    job = Job(0, CHAT, content_id(CHAT), seed=5)
    by_default = SwapAugmenter(SwapAugConfig(rate=0.3), ctx).augment([job])[0]
    assert by_default is not None
    assert by_default.record.messages[2] == CHAT.messages[2]  # type: ignore[union-attr]
    asked = SwapAugmenter(SwapAugConfig(rate=0.3, roles=["assistant"]), ctx).augment([job])[0]
    assert asked is not None
    assert asked.record.messages[1] == CHAT.messages[1]  # type: ignore[union-attr]
    assert asked.record.messages[2] != CHAT.messages[2]  # type: ignore[union-attr]


def test_provenance_tag_round_trips_through_the_origin() -> None:
    record = LabelRecord("play some jazz", "play_music", Origin("data.jsonl", 7))
    parent_id = content_id(record)
    tag = AugmentTag("swap", parent_id, 1234567890123, copy=2)
    tagged = tag_record(record, tag)
    assert tagged.origin == Origin(f"augment:swap:{parent_id}:1234567890123", 2)
    assert augment_tag(tagged) == tag
    assert is_augmented(tagged) and not is_augmented(record)
    assert augment_tag(record) is None
    # the op is replayable from the tag's seed
    assert ops.random_swap("play some jazz now", random.Random(tag.seed)) == ops.random_swap(
        "play some jazz now", random.Random(1234567890123)
    )
