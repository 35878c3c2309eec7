"""Packing without cross-contamination, collation contract and deterministic batch order."""

from __future__ import annotations

import pytest

from tunesmith.core.records import CompletionRecord, Origin, PromptStyle
from tunesmith.encode.chat import IGNORE_INDEX, EncodedExample, encode_records
from tunesmith.encode.pack import (
    collate_packed,
    collate_padded,
    count_target_tokens,
    count_tokens,
    pack_examples,
)


@pytest.fixture()
def examples(tiny_tokenizer) -> list[EncodedExample]:
    records = [
        CompletionRecord(
            "Play jazz. " * (i % 4 + 1), ["play_music", "get_weather"][i % 2], Origin("d.jsonl", i + 1)
        )
        for i in range(7)
    ]
    encoded, _ = encode_records(records, tiny_tokenizer, PromptStyle(), max_seq_length=512, train_on_prompt=False)
    return encoded


def test_pack_fits_every_example_once_and_resets_positions(examples) -> None:
    limit = 60
    rows = pack_examples(examples, max_tokens_per_row=limit, seed=0)
    assert sorted(sum((r.lengths for r in rows), [])) == sorted(len(e) for e in examples)
    assert all(len(r) <= limit for r in rows)
    assert len(rows) < len(examples)  # something was actually packed together
    for row in rows:
        start = 0
        for length in row.lengths:
            assert row.position_ids[start : start + length] == list(range(length))
            assert row.labels[start] == IGNORE_INDEX  # never predicted from the previous example
            start += length
    assert pack_examples(examples, limit, seed=0) == rows  # deterministic


def test_boundary_label_masked_even_when_training_on_prompt() -> None:
    a = EncodedExample([1, 2, 3], [1, 2, 3], Origin("x", 1))
    b = EncodedExample([4, 5], [4, 5], Origin("x", 2))
    (row,) = pack_examples([a, b], max_tokens_per_row=5, seed=0)
    assert row.input_ids == [1, 2, 3, 4, 5]
    assert row.labels == [IGNORE_INDEX, 2, 3, IGNORE_INDEX, 5]
    assert row.position_ids == [0, 1, 2, 0, 1]


def test_pack_refuses_examples_longer_than_a_row(examples) -> None:
    with pytest.raises(ValueError, match="max_tokens_per_row"):
        pack_examples(examples, max_tokens_per_row=5, seed=0)


def test_collate_packed_contract(examples, tiny_tokenizer) -> None:
    import torch

    rows = pack_examples(examples, 60, seed=0)
    batch = collate_packed(rows[:2], pad_id=tiny_tokenizer.pad_token_id)
    assert set(batch) == {"input_ids", "labels", "position_ids"}  # no attention_mask: packing from position_ids
    width = max(len(r) for r in rows[:2])
    for key in batch:
        assert batch[key].shape == (2, width) and batch[key].dtype == torch.long
    short = min(range(2), key=lambda i: len(rows[i]))
    pad = width - len(rows[short])
    if pad:
        assert (batch["labels"][short, -pad:] == IGNORE_INDEX).all()
    assert count_tokens(batch) == len(rows[0]) + len(rows[1])
    assert count_target_tokens(batch) == sum(sum(1 for x in r.labels[1:] if x != IGNORE_INDEX) for r in rows[:2])


def test_collate_padded_contract(examples) -> None:
    import torch

    batch = collate_padded(examples[:3], pad_id=0)
    width = max(len(e) for e in examples[:3])
    assert set(batch) == {"input_ids", "labels", "position_ids", "attention_mask"}
    for i, example in enumerate(examples[:3]):
        n = len(example)
        assert batch["input_ids"][i, :n].tolist() == example.input_ids
        assert batch["labels"][i, :n].tolist() == example.labels
        assert (batch["labels"][i, n:] == IGNORE_INDEX).all()
        assert batch["attention_mask"][i].tolist() == [1] * n + [0] * (width - n)
    assert batch["position_ids"].dtype == torch.long
    assert count_tokens(batch) == sum(len(e) for e in examples[:3])
    assert count_tokens(dict(batch)) == count_tokens(batch)  # also from the mask of a plain dict


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_logits_equal_separate_logits(examples, tiny_model, tiny_tokenizer, attn) -> None:
    """No cross-example attention: each packed example sees exactly what it sees alone."""
    import torch

    model = tiny_model.eval()
    model.set_attn_implementation(attn)
    model.config.use_cache = False  # as load_model_and_tokenizer returns it (a cache turns packing detection off)
    rows = pack_examples(examples, 60, seed=0)
    batch = collate_packed(rows, pad_id=tiny_tokenizer.pad_token_id)
    assert any(len(r.lengths) > 1 for r in rows)
    with torch.no_grad():
        packed = model(**batch).logits  # (rows, width, vocab)
        for r, row in enumerate(rows):
            start = 0
            for length in row.lengths:
                alone = model(input_ids=torch.tensor([row.input_ids[start : start + length]])).logits[0]
                torch.testing.assert_close(packed[r, start : start + length], alone, atol=1e-4, rtol=0)
                start += length


def test_packed_loss_equals_mean_of_separate_losses(examples, tiny_model, tiny_tokenizer) -> None:
    """The model's own shifted loss over a packed row counts only in-example targets."""
    import torch

    model = tiny_model.eval()
    model.config.use_cache = False
    rows = pack_examples(examples[:4], 200, seed=0)
    assert len(rows) == 1
    batch = collate_packed(rows, pad_id=tiny_tokenizer.pad_token_id)
    with torch.no_grad():
        packed_loss = model(**batch).loss
        total, count = 0.0, 0
        for e in examples[:4]:
            n = sum(1 for x in e.labels[1:] if x != IGNORE_INDEX)
            loss = model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels])).loss
            total, count = total + float(loss) * n, count + n
    assert abs(float(packed_loss) - total / count) < 1e-4
