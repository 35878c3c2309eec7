"""What a client sends and receives: only the adapter's tensors, never the base model.

The peft state dict (`get_peft_model_state_dict`) holds exactly the adapter weights (LoRA A/B, IA3 vectors,
prefix embeddings) with the adapter name stripped, so names match across clients; it goes into a Flower
`ArrayRecord` as float32 numpy arrays.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from tunesmith.core.errors import TunesmithError

if TYPE_CHECKING:
    import torch
    from torch import nn


def adapter_state(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """A detached CPU copy of the adapter tensors (peft names, adapter name stripped)."""
    from peft import get_peft_model_state_dict

    if not hasattr(model, "peft_config"):
        raise TunesmithError("federated training exchanges adapter tensors; set adapter.method to a peft method "
                             "(lora, dora, ia3, prefix), not `full`")
    state = get_peft_model_state_dict(model)
    return OrderedDict((name, t.detach().to("cpu", copy=True)) for name, t in state.items())


def load_adapter_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy `state` into the model's adapter; every adapter tensor must be given, nothing else may be."""
    from peft import set_peft_model_state_dict

    expected = set(adapter_state(model))
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        raise TunesmithError(f"the global adapter does not match this client's adapter: missing {missing[:3]}, "
                             f"unexpected {extra[:3]}; every client and the server need the same adapter config")
    result: Any = set_peft_model_state_dict(model, state)
    unexpected = list(getattr(result, "unexpected_keys", []))
    if unexpected:
        raise TunesmithError(f"adapter tensors not loaded: {unexpected[:3]}")


def to_array_record(state: dict[str, torch.Tensor]) -> Any:
    """A Flower `ArrayRecord` of the adapter tensors (float32)."""
    from flwr.app import ArrayRecord

    return ArrayRecord.from_torch_state_dict({k: v.float() for k, v in state.items()})


def from_array_record(record: Any) -> OrderedDict[str, torch.Tensor]:
    """The adapter tensors of a Flower `ArrayRecord` (names kept)."""
    return record.to_torch_state_dict()
