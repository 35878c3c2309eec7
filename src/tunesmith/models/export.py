"""Save a tuned model, load it back, and export a merged stand-alone model.

An adapter folder is what peft writes (`adapter_config.json` + `adapter_model.safetensors`) plus the tokenizer,
so `PeftModel.from_pretrained(base, folder)` works outside tunesmith. Full fine-tuning saves the whole model
(safetensors) instead. `export_merged` checks that the merged model gives the adapter model's logits, before
and after writing, and fails instead of reporting a silently broken export.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.config.schema import ModelConfig
from tunesmith.core.errors import ModelLoadError, TunesmithError
from tunesmith.models.load import check_adapter_folder, load_model_and_tokenizer

PROBE_TEXT = "Hello! Which intent is this: play some jazz music from the seventies."


class ExportError(TunesmithError):
    """A merged export could not be made or did not reproduce the tuned model."""


@dataclass(frozen=True)
class ExportReport:
    """Where the merged model went and how closely it reproduces the adapter model on the probe."""

    out_dir: Path
    max_abs_diff: float
    reloaded_max_abs_diff: float


def is_peft_model(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def save_adapter(model: Any, folder: str | Path, tokenizer: Any | None = None) -> Path:
    """Write the adapter (peft, safetensors) or, for full fine-tuning, the whole model; plus the tokenizer."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if is_peft_model(model):
        model.save_pretrained(folder, safe_serialization=True)
    else:
        model.save_pretrained(folder)  # transformers 5 always writes safetensors
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def load_tuned(base_cfg: ModelConfig, adapter_dir: str | Path) -> Any:
    """The tuned model in eval mode: base + adapter (peft folder), or the saved model of a full fine-tune."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if (adapter_dir / "adapter_config.json").is_file():
        check_adapter_folder(adapter_dir)  # before peft, which would torch.load an adapter_model.bin
        base, _ = load_model_and_tokenizer(base_cfg)
        return PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    if (adapter_dir / "config.json").is_file():  # full fine-tune: the folder is a whole model
        cfg = ModelConfig(source=str(adapter_dir), trust_remote_code=base_cfg.trust_remote_code)
        return load_model_and_tokenizer(cfg)[0].eval()
    raise ModelLoadError(
        f"{adapter_dir} holds neither adapter_config.json nor config.json; is it an adapter folder?"
    )


def load_tuned_tokenizer(base_cfg: ModelConfig, adapter_dir: str | Path) -> Any:
    """The tokenizer saved with the adapter (it may carry a fallback chat template), else the base one."""
    from transformers import AutoTokenizer

    adapter_dir = Path(adapter_dir)
    if (adapter_dir / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(str(adapter_dir))
    return load_model_and_tokenizer(base_cfg)[1]


def probe_logits(model: Any, tokenizer: Any) -> Any:
    """Logits `(1, seq, vocab)` of the model on a fixed probe text, in fp32 without autocast."""
    import torch

    ids = tokenizer(PROBE_TEXT, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :64]
    device = next(model.parameters()).device
    with torch.no_grad():
        return model(input_ids=ids.to(device)).logits.float().cpu()


def export_merged(
    base_cfg: ModelConfig, adapter_dir: str | Path, out_dir: str | Path, atol: float = 1e-4
) -> ExportReport:
    """Merge the adapter into the base weights and save a stand-alone model (safetensors) with its tokenizer.

    The merged model's probe logits must equal the adapter model's (within `atol`), both in memory and after
    reloading the written folder; otherwise nothing is left at `out_dir` and ExportError says why.
    """
    from transformers import AutoModelForCausalLM

    out_dir = Path(out_dir)
    tokenizer = load_tuned_tokenizer(base_cfg, adapter_dir)
    tuned = load_tuned(base_cfg, adapter_dir)
    expected = probe_logits(tuned, tokenizer)
    if is_peft_model(tuned):
        if getattr(tuned.peft_config[tuned.active_adapter], "is_prompt_learning", False):
            raise ExportError(
                "prefix tuning cannot be merged into the weights; serve the adapter folder with peft"
            )
        merged = tuned.merge_and_unload()
    else:
        merged = tuned
    diff = float((probe_logits(merged, tokenizer) - expected).abs().max())
    if diff > atol:
        raise ExportError(
            f"merged logits differ from the adapter model's by {diff:.2e} (> {atol:.0e}); not exported"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        merged.config.use_cache = True  # a merged export is for inference
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        reloaded = AutoModelForCausalLM.from_pretrained(str(tmp), use_safetensors=True).float().eval()
        reloaded_diff = float((probe_logits(reloaded, tokenizer) - expected).abs().max())
        if reloaded_diff > atol:
            raise ExportError(
                f"the written merged model gives logits {reloaded_diff:.2e} away from the adapter model"
            )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportReport(out_dir=out_dir, max_abs_diff=diff, reloaded_max_abs_diff=reloaded_diff)
