"""tunesmith's own training path for the throughput benchmark, put together the way `recipes/finetune.py` does it:
load -> encode (chat template, answer-only labels) -> pack -> LoRA -> `tunesmith.train.loop.train`.

Runs inside a spawned child process (see `train_throughput.py`); returns a `RunResult`.
"""

from __future__ import annotations

import functools
import tempfile
from typing import Any

from _common import (
    LEARNING_RATE,
    LORA_ALPHA,
    LORA_DROPOUT,
    LORA_R,
    LR_SCHEDULE,
    LR_WARMUP_STEPS,
    SEED,
    RunResult,
    RunSpec,
    StepClock,
    bench_conversations,
    count_real_tokens,
    examples_needed,
    load_bench_model,
    lora_flops_per_token,
    peak_rss_mb,
    prepare_child,
)


class ClockTracker:
    """A `tunesmith.track.run_dir.Tracker` that turns the loop's per-step log line into a clock mark.

    With `log_every_steps=1` the loop calls `log_metrics` right after each optimizer step, before any checkpoint
    is written, so the final save stays outside the timed window.
    """

    def __init__(self, clock: StepClock) -> None:
        self.clock = clock

    def log_params(self, params: dict[str, Any]) -> None:
        return None

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        if "loss" in metrics:  # validation lines carry only val_loss
            self.clock.end_step(metrics["loss"])

    def log_artifact(self, path: Any) -> None:
        return None

    def close(self) -> None:
        return None


def encoded_rows(tokenizer: Any, spec: RunSpec) -> tuple[list[Any], dict[str, Any]]:
    """The shared conversations, encoded with answer-only labels and packed into rows of `seq_len` tokens."""
    from tunesmith.core.records import ChatRecord, Message, Origin, PromptStyle
    from tunesmith.encode.chat import encode_records
    from tunesmith.encode.pack import pack_examples

    conversations, source = bench_conversations(examples_needed(spec))
    records = [
        ChatRecord(messages=tuple(Message(m["role"], m["content"]) for m in conv), origin=Origin(source, i + 1))
        for i, conv in enumerate(conversations)
    ]
    examples, report = encode_records(records, tokenizer, PromptStyle(), spec.seq_len)
    return pack_examples(examples, spec.seq_len, seed=SEED), report.to_dict()


def run_ours(spec: RunSpec) -> RunResult:
    """Train `spec.total_steps` steps with our loop + LoRA; time the steps after warm-up."""
    import torch

    from tunesmith.config.schema import AdapterConfig, TrainConfig
    from tunesmith.encode.pack import collate_packed
    from tunesmith.models.adapters import apply_adapter, place_for_training
    from tunesmith.models.device import resolve_precision
    from tunesmith.track.run_dir import RunDir
    from tunesmith.train.loop import train

    prepare_child(spec.threads)
    device = torch.device("cpu")
    autocast_dtype = resolve_precision(device, "auto")
    model, tokenizer, loaded_by = load_bench_model()
    rows, encode_report = encoded_rows(tokenizer, spec)
    model = apply_adapter(model, AdapterConfig(method="lora", r=LORA_R, alpha=LORA_ALPHA, dropout=LORA_DROPOUT))
    model = place_for_training(model, "lora", device, autocast_dtype)
    cfg = TrainConfig(
        learning_rate=LEARNING_RATE, schedule=LR_SCHEDULE, warmup_steps=LR_WARMUP_STEPS, weight_decay=0.0,
        max_grad_norm=1.0, batch_size=spec.batch_size, max_steps=spec.total_steps, gradient_checkpointing=False,
        log_every_steps=1, save_every_steps=10**9, resume="never",
    )
    clock = StepClock(warmup=spec.warmup_steps)
    collate_rows = functools.partial(collate_packed, pad_id=tokenizer.pad_token_id)

    def counting_collate(items: list[Any]) -> dict[str, Any]:
        batch = collate_rows(items)
        clock.add_tokens(count_real_tokens(batch))  # here, before the loop copies the batch to a plain dict
        return batch

    with tempfile.TemporaryDirectory(prefix="bench-ours-") as out_dir:
        run = RunDir.create(out_dir, {"bench": "train_throughput"}, run_id="bench", seed=SEED, device="cpu")
        clock.start()
        train(model, rows, None, cfg, run, device, autocast_dtype, counting_collate, seed=SEED,
              trackers=[ClockTracker(clock)])
    tokens, seconds = clock.timed()
    return RunResult(
        name="ours",
        tokens_per_s=tokens / seconds,
        timed_tokens=tokens,
        timed_seconds=seconds,
        step_losses=clock.losses,
        peak_rss_mb=peak_rss_mb(),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        flops_per_token=lora_flops_per_token(model),
        notes={
            "model": loaded_by,
            "autocast": str(autocast_dtype).removeprefix("torch."),
            "gradient_checkpointing": cfg.gradient_checkpointing,
            "packing": True,
            "padding_free": "position_ids, no 2D mask",
            "loss_on": "completion",
            "learning_rate": cfg.learning_rate,
            "lr_scheduler": cfg.schedule,
            "optim": "torch AdamW (fused)",
            "packed_rows": len(rows),
            "encoded_examples": encode_report.get("kept"),
        },
    )
