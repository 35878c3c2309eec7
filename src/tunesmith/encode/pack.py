"""Packing, collation and batch order.

Batch contract (the train loop relies on it), all tensors `(batch, seq)` long:
- `input_ids`
- `labels`: -100 where no loss is taken (prompt, padding, first token of each packed example); aligned with
  `input_ids`, NOT shifted: the loss shifts.
- `position_ids`: restart at 0 for every example in a packed row.
- `attention_mask`: ONLY in padded batches. Packed batches omit it on purpose: with no 2D mask and no cache,
  transformers (`masking_utils.find_packed_sequence_indices`) reads the sequence borders from the position_ids
  and builds a block-diagonal causal mask for sdpa/eager, and flash-attention uses them as varlen borders, so no
  token attends across examples. `tests/test_encode_pack.py` checks packed logits equal per-example logits.
  Models whose attention does not go through `masking_utils` (and PEFT prefix tuning, which adds a cache) must
  use padded batches instead.

Padding in a packed batch goes at the end of a row and counts as one more sequence (its positions restart at 0),
so real tokens never see it (it comes after them, and the mask is causal) and its labels are -100.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from tunesmith.encode.chat import IGNORE_INDEX, EncodedExample

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


@dataclass
class PackedRow:
    """Several examples laid end to end; `lengths` are the example lengths in order."""

    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def add(self, example: EncodedExample) -> None:
        """Append one example; its first label is masked, as it would be predicted from the previous example."""
        labels = list(example.labels)
        labels[0] = IGNORE_INDEX
        self.input_ids.extend(example.input_ids)
        self.labels.extend(labels)
        self.position_ids.extend(range(len(example)))
        self.lengths.append(len(example))


def pack_examples(examples: Sequence[EncodedExample], max_tokens_per_row: int, seed: int = 0) -> list[PackedRow]:
    """Best-fit-decreasing bin packing of examples into rows of at most `max_tokens_per_row` tokens.

    Deterministic: the seed only breaks ties between examples of equal length, so equal-length examples from one
    source file do not always share a row. O(n log n) via a sorted list of remaining capacities.
    """
    too_long = [e for e in examples if len(e) > max_tokens_per_row]
    if too_long:
        raise ValueError(
            f"{len(too_long)} examples are longer than max_tokens_per_row={max_tokens_per_row} "
            f"(first: {too_long[0].origin}, {len(too_long[0])} tokens); encode with max_seq_length <= row size"
        )
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    order.sort(key=lambda i: -len(examples[i]))  # stable: ties keep the seeded order
    rows: list[PackedRow] = []
    free: list[tuple[int, int]] = []  # (remaining capacity, row index), sorted
    for i in order:
        example = examples[i]
        k = bisect.bisect_left(free, (len(example), -1))
        if k < len(free):
            remaining, row_index = free.pop(k)
        else:
            remaining, row_index = max_tokens_per_row, len(rows)
            rows.append(PackedRow())
        rows[row_index].add(example)
        bisect.insort(free, (remaining - len(example), row_index))
    return rows


def _pad(values: list[int], length: int, fill: int) -> list[int]:
    return values + [fill] * (length - len(values))


class Batch(dict):  # type: ignore[type-arg]
    """The batch dict (`model(**batch)` works) plus `num_tokens`, the count of non-pad tokens."""

    num_tokens: int = 0


def collate_packed(rows: Sequence[PackedRow], pad_id: int) -> Batch:
    """Packed rows as tensors; no `attention_mask` (see module doc). Shapes `(batch, longest row)`."""
    import torch

    width = max(len(r) for r in rows)
    input_ids, labels, positions = [], [], []
    for row in rows:
        extra = width - len(row)
        input_ids.append(_pad(row.input_ids, width, pad_id))
        labels.append(_pad(row.labels, width, IGNORE_INDEX))
        positions.append(row.position_ids + list(range(extra)))  # padding = one more sequence at the end
    batch = Batch(
        input_ids=torch.tensor(input_ids, dtype=torch.long),
        labels=torch.tensor(labels, dtype=torch.long),
        position_ids=torch.tensor(positions, dtype=torch.long),
    )
    batch.num_tokens = sum(len(r) for r in rows)
    return batch


def collate_padded(examples: Sequence[EncodedExample], pad_id: int) -> Batch:
    """Examples right-padded to the longest, with `attention_mask`. Shapes `(batch, longest example)`."""
    import torch

    width = max(len(e) for e in examples)
    batch = Batch(
        input_ids=torch.tensor([_pad(e.input_ids, width, pad_id) for e in examples], dtype=torch.long),
        labels=torch.tensor([_pad(e.labels, width, IGNORE_INDEX) for e in examples], dtype=torch.long),
        position_ids=torch.arange(width, dtype=torch.long).repeat(len(examples), 1),
        attention_mask=torch.tensor([_pad([1] * len(e), width, 0) for e in examples], dtype=torch.long),
    )
    batch.num_tokens = sum(len(e) for e in examples)
    return batch


def count_tokens(batch: dict[str, Any]) -> int:
    """Non-pad tokens in a batch: from `Batch.num_tokens`, else the attention mask, else every position.

    Pads cannot be told apart by id (the pad id is often the eos id, which real text contains), hence the count
    recorded at collation.
    """
    if isinstance(batch, Batch):
        return batch.num_tokens
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return int(batch["input_ids"].numel())


def count_target_tokens(batch: dict[str, Any]) -> int:
    """Tokens the loss is averaged over: labels other than -100 after the shift (position 0 never counts)."""
    labels: torch.Tensor = batch["labels"]
    return int((labels[:, 1:] != IGNORE_INDEX).sum())
