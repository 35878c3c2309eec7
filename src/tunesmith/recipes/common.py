"""Setup steps several recipes share: runtime (seed, threads, device), prompt style, encoding, reporting."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from tunesmith.config import Config, EncodeConfig
from tunesmith.core.records import LabelRecord, PromptStyle, Record


@functools.cache
def console() -> Any:
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def setup_runtime(cfg: Config) -> tuple[Any, Any]:
    """Threads, device and autocast dtype for this run."""
    from tunesmith.models.device import resolve_precision, select_device, set_cpu_threads

    quiet_libraries()
    set_cpu_threads(cfg.model.num_threads)
    device = select_device(cfg.model.device)
    return device, resolve_precision(device, cfg.model.precision)


def quiet_libraries() -> None:
    """Our own progress and tables are the output; the libraries' per-file progress bars only add noise."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\..*")


def prompt_style(cfg: EncodeConfig, train_records: list[Record]) -> PromptStyle:
    """How label and pair records are phrased; the label set comes from the training split."""
    labels = tuple(sorted({r.label for r in train_records if isinstance(r, LabelRecord)}))
    return PromptStyle(system=cfg.system_prompt, label_prompt=cfg.label_prompt, labels=labels)


def encode_split(records: list[Record], tokenizer: Any, style: PromptStyle, cfg: EncodeConfig) -> tuple[list, Any]:
    from tunesmith.encode.chat import encode_records

    return encode_records(records, tokenizer, style, cfg.max_seq_length, cfg.overlong, cfg.train_on_prompt)


def build_collate(packing: bool, pad_id: int) -> Callable[[list[Any]], dict[str, Any]]:
    from tunesmith.encode.pack import collate_packed, collate_padded

    return functools.partial(collate_packed if packing else collate_padded, pad_id=pad_id)
