"""Parameter-efficient methods (via peft) and full fine-tuning, behind one registry.

`apply_adapter(model, cfg)` returns the model to train: a `peft.PeftModel` whose only trainable parameters are
the adapter's, or (method `full`) the model itself with every parameter trainable. `trainable_state_dict` /
`load_trainable_state_dict` are what checkpoints store: exactly the trainable parameters, by name.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunesmith.config.schema import AdapterConfig
from tunesmith.core.errors import CheckpointError, DependencyError
from tunesmith.core.registry import Registry

if TYPE_CHECKING:
    import torch

# Leaf names of MLP output ("down") projections across common architectures; IA3 scales their input.
_DOWN_PROJECTIONS = ("down_proj", "fc2", "dense_4h_to_h", "w2", "c_proj", "fc_out", "wo")
_MLP_PARENTS = ("mlp", "ffn", "feed_forward", "feedforward")


@dataclass(frozen=True)
class AdapterMethod:
    """How one method wraps a model. `supports_packing` is False where the method adds a KV cache (prefix
    tuning), which turns off transformers' packed-sequence masking: such runs must use padded batches."""

    name: str
    build: Callable[[Any, AdapterConfig], Any]
    supports_packing: bool = True
    mergeable: bool = True


PEFT_METHODS: Registry[AdapterMethod] = Registry("PEFT method")


def _register(method: AdapterMethod) -> None:
    PEFT_METHODS.register(method.name)(method)


def apply_adapter(model: Any, cfg: AdapterConfig) -> Any:
    """Wrap `model` for training with `cfg.method`; only the method's parameters are left trainable."""
    return PEFT_METHODS.get(cfg.method).build(model, cfg)


def _is_linear(module: Any) -> bool:
    import torch
    from transformers.pytorch_utils import Conv1D  # GPT-2 style linear layers, which peft also adapts

    return isinstance(module, (torch.nn.Linear, Conv1D))


def _head_modules(model: Any) -> set[int]:
    """ids of the output head and of any linear sharing the input embedding weight (tied)."""
    ids: set[int] = set()
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None:
        ids.add(id(head))
    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embed is not None:
        for module in model.modules():
            if _is_linear(module) and module.weight is embed.weight:
                ids.add(id(module))
    return ids


def find_linear_targets(model: Any) -> list[str]:
    """Leaf names of every linear layer except the output head (`lm_head` and anything tied to the embeddings).

    Leaf names are what peft's `target_modules` matches; a name shared with the head would adapt the head too,
    so such a name is left out as well.
    """
    heads = _head_modules(model)
    keep: set[str] = set()
    head_names = {"lm_head"}
    for name, module in model.named_modules():
        if not name or not _is_linear(module):
            continue
        leaf = name.rsplit(".", 1)[-1]
        (head_names if id(module) in heads else keep).add(leaf)
    return sorted(keep - head_names)


def find_feedforward_targets(model: Any, targets: list[str]) -> list[str]:
    """Among `targets`, the MLP down/out projections (IA3 scales their input rather than their output)."""
    found: set[str] = set()
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf not in targets or not _is_linear(module):
            continue
        in_mlp = any(part in _MLP_PARENTS for part in name.lower().split("."))
        if leaf in _DOWN_PROJECTIONS and (in_mlp or leaf != "c_proj"):  # GPT-2's attention also has c_proj
            found.add(leaf)
    return sorted(found)


def _lora_config(model: Any, cfg: AdapterConfig, use_dora: bool) -> Any:
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules or find_linear_targets(model),
        use_dora=use_dora,
    )


def _build_lora(model: Any, cfg: AdapterConfig) -> Any:
    from peft import get_peft_model

    return get_peft_model(model, _lora_config(model, cfg, use_dora=False))


def _build_dora(model: Any, cfg: AdapterConfig) -> Any:
    from peft import get_peft_model

    return get_peft_model(model, _lora_config(model, cfg, use_dora=True))


def _build_ia3(model: Any, cfg: AdapterConfig) -> Any:
    from peft import IA3Config, TaskType, get_peft_model
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as KNOWN

    targets = cfg.target_modules or KNOWN.get(model.config.model_type) or find_linear_targets(model)
    targets = list(targets)
    config = IA3Config(
        task_type=TaskType.CAUSAL_LM,
        target_modules=targets,
        feedforward_modules=find_feedforward_targets(model, targets),
    )
    return get_peft_model(model, config)


def _build_prefix(model: Any, cfg: AdapterConfig) -> Any:
    from peft import PrefixTuningConfig, TaskType, get_peft_model

    return get_peft_model(
        model, PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=cfg.num_virtual_tokens)
    )


def check_qlora_available() -> None:
    """QLoRA's 4-bit base model needs a CUDA GPU and bitsandbytes; raise DependencyError with the fix otherwise."""
    import torch

    if not torch.cuda.is_available():
        raise DependencyError(
            "adapter.method=qlora needs a CUDA GPU (4-bit bitsandbytes kernels); use adapter.method=lora here"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise DependencyError("adapter.method=qlora needs bitsandbytes: pip install bitsandbytes")


def _build_qlora(model: Any, cfg: AdapterConfig) -> Any:
    """LoRA on a 4-bit base. The base must come from `models.load.load_quantized` (checked here)."""
    check_qlora_available()
    from peft import get_peft_model, prepare_model_for_kbit_training

    if not getattr(model, "is_loaded_in_4bit", False):
        raise DependencyError(
            "qlora needs the base model loaded in 4-bit: load it with models.load.load_quantized"
        )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return get_peft_model(model, _lora_config(model, cfg, use_dora=False))


def _build_full(model: Any, cfg: AdapterConfig) -> Any:
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return model


_register(AdapterMethod("lora", _build_lora))
_register(AdapterMethod("dora", _build_dora))
_register(AdapterMethod("ia3", _build_ia3))
_register(AdapterMethod("prefix", _build_prefix, supports_packing=False, mergeable=False))
_register(AdapterMethod("qlora", _build_qlora))
_register(AdapterMethod("full", _build_full))


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts; tied weights counted once."""
    trainable = total = 0
    for parameter in model.parameters():
        n = parameter.numel()
        # bitsandbytes packs two 4-bit values per byte element; peft reports the unpacked count the same way
        if parameter.__class__.__name__ == "Params4bit":
            n *= 2
        total += n
        trainable += n if parameter.requires_grad else 0
    return trainable, total


def trainable_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """Every trainable parameter by name (adapter weights for peft models, all weights for `full`), detached.

    Tied parameters appear once, so the result can be written with safetensors as is.
    """
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state_dict(model: Any, state: dict[str, torch.Tensor]) -> None:
    """Copy `state` (from `trainable_state_dict`) into the trainable parameters; names must match exactly."""
    import torch

    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint does not match the model's trainable parameters: missing {missing[:5]} "
            f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)}); "
            "was it written with a different adapter method, rank or target modules? Resume with the same model "
            "and adapter config, or start a new run (train.resume=never)"
        )
    with torch.no_grad():
        for name, parameter in params.items():
            value = state[name]
            if value.shape != parameter.shape:
                raise CheckpointError(
                    f"checkpoint tensor {name} has shape {tuple(value.shape)}, "
                    f"the model expects {tuple(parameter.shape)}"
                )
            parameter.copy_(value.to(device=parameter.device, dtype=parameter.dtype))


# Methods whose frozen base layers only feed matmuls (so storing them in the autocast dtype changes no result).
_CASTABLE_METHODS = ("lora",)


def place_for_training(model: Any, method: str, device: Any, autocast_dtype: Any) -> Any:
    """Move `model` to `device`; under autocast, store LoRA's frozen linear weights in the autocast dtype.

    Why: autocast caches the low-precision copy only of weights that require grad, so a frozen fp32 base weight
    is cast again in every forward pass (10-14% of a LoRA step on CPU, and twice the memory traffic). A matmul
    under autocast casts its fp32 weight to that dtype anyway, so the results are bitwise the same. The tied
    output head is left alone: it shares its weight with the input embeddings, which feed the fp32 residual.
    """
    if method != "qlora":  # 4-bit models are placed at load time and refuse `.to`
        model.to(device)
    if autocast_dtype is None or method not in _CASTABLE_METHODS:
        return model
    import torch

    embeddings = model.get_input_embeddings()
    tied = {id(embeddings.weight)} if embeddings is not None else set()
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear) or module.weight.requires_grad or id(module.weight) in tied:
            continue
        module.weight.data = module.weight.data.to(autocast_dtype)
        if module.bias is not None and not module.bias.requires_grad:
            module.bias.data = module.bias.data.to(autocast_dtype)
    return model
