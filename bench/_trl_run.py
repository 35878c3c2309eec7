"""TRL `SFTTrainer` runs for the throughput benchmark: at its defaults, and at its best settings for a CPU.

Runs inside a spawned child process (see `train_throughput.py`); returns a `RunResult`.
"""

from __future__ import annotations

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


def our_rows_dataset(tokenizer: Any, spec: RunSpec) -> Any:
    """Our packed rows, in the order our loop reads them, as a pre-processed dataset TRL trains on as is.

    Same rows, same order, same labels (answer tokens only; the first token of each packed example masked), and
    `seq_lengths` so TRL's padding-free collator restarts position ids per example like ours. With the same lr
    schedule, the two losses should then agree step by step up to bf16 rounding: the like-for-like loss check.
    """
    from _ours_run import encoded_rows
    from datasets import Dataset

    from tunesmith.train.batches import EpochBatches

    rows, _ = encoded_rows(tokenizer, spec)
    batches = EpochBatches(rows, spec.batch_size, collate=lambda items: {}, seed=SEED)
    needed = spec.total_steps * spec.batch_size
    order: list[int] = []
    epoch = 0
    while len(order) < needed:
        order += batches.order(epoch)
        epoch += 1
    picked = [rows[i] for i in order[:needed]]
    return Dataset.from_list(
        [{"input_ids": r.input_ids, "labels": r.labels, "seq_lengths": r.lengths} for r in picked]
    )


def trl_dataset(best: bool, spec: RunSpec) -> Any:
    """The shared conversations as a `datasets.Dataset`.

    Defaults: a `messages` dataset (TRL then puts loss on every token). Best: the same conversations split into
    conversational prompt/completion, which is how TRL does completion-only loss for a template without
    `{% generation %}` markers (SmolLM2's has none, and TRL ships no training template for it).
    """
    from datasets import Dataset

    conversations, _ = bench_conversations(examples_needed(spec))
    if best:
        rows = [{"prompt": c[:-1], "completion": c[-1:]} for c in conversations]
    else:
        rows = [{"messages": c} for c in conversations]
    return Dataset.from_list(rows)


def sft_config(mode: str, spec: RunSpec, output_dir: str) -> Any:
    """SFTConfig: only what the benchmark must fix (steps, batch, length, logging) for `default`; TRL's best CPU
    settings for `best`; for `our_rows`, the best settings on our pre-packed rows read in order."""
    best = mode != "default"
    from trl import SFTConfig

    common: dict[str, Any] = {
        "output_dir": output_dir,
        "max_steps": spec.total_steps,
        "per_device_train_batch_size": spec.batch_size,
        "max_length": spec.seq_len,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "seed": SEED,
        "use_cpu": True,
    }
    if not best:
        return SFTConfig(**common)
    best_settings: dict[str, Any] = {
        "bf16": True,
        "packing": True,  # BFD packing; TRL then turns padding_free on (position ids, no 2D mask)
        "padding_free": True,
        "gradient_checkpointing": False,
        "completion_only_loss": True,
        "dataloader_num_workers": 0,  # 2 cores: a worker process would steal compute from the step
        "dataloader_pin_memory": False,
        # Same optimisation as our loop, so the final losses compare like with like.
        "learning_rate": LEARNING_RATE,
        "lr_scheduler_type": LR_SCHEDULE,
        "warmup_steps": LR_WARMUP_STEPS,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
    }
    if mode == "our_rows":
        best_settings.update(
            packing=False,  # the rows are packed already; padding-free keeps their example boundaries
            completion_only_loss=None,  # the rows carry labels
            dataset_kwargs={"skip_prepare_dataset": True},
            shuffle_dataset=False,
            train_sampling_strategy="sequential",  # our loop's order, laid out by `our_rows_dataset`
        )
        common["max_length"] = None  # rows are at most `seq_len` tokens already; TRL refuses a limit it can't apply
    return SFTConfig(**common, **best_settings)


def run_trl(mode: str, spec: RunSpec) -> RunResult:
    """Train `spec.total_steps` steps with SFTTrainer + peft LoRA; time the steps after warm-up."""
    from peft import LoraConfig
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    prepare_child(spec.threads)
    model, tokenizer, loaded_by = load_bench_model()
    clock = StepClock(warmup=spec.warmup_steps)

    class TimedSFTTrainer(SFTTrainer):  # type: ignore[misc]
        """Counts the non-pad tokens of every micro-batch it trains on."""

        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            clock.add_tokens(count_real_tokens(inputs))
            return super().training_step(model, inputs, *args, **kwargs)

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.start()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.end_step()

    peft_config = LoraConfig(
        r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT, task_type="CAUSAL_LM",
        target_modules="all-linear",  # peft: every linear layer except the output head, like ours
    )
    with tempfile.TemporaryDirectory(prefix="bench-trl-") as output_dir:
        args = sft_config(mode, spec, output_dir)
        dataset = our_rows_dataset(tokenizer, spec) if mode == "our_rows" else trl_dataset(mode == "best", spec)
        trainer = TimedSFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[Clock()],
        )
        trainer.remove_callback(PrinterCallback)  # one dict per step on stdout; we print our own summary
        trainer.train()
    losses = [float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    tokens, seconds = clock.timed()
    peft_model = trainer.model
    return RunResult(
        name=f"trl_{mode}",
        tokens_per_s=tokens / seconds,
        timed_tokens=tokens,
        timed_seconds=seconds,
        step_losses=losses,
        peak_rss_mb=peak_rss_mb(),
        trainable_params=sum(p.numel() for p in peft_model.parameters() if p.requires_grad),
        flops_per_token=lora_flops_per_token(peft_model),
        notes={"model": loaded_by, **effective_settings(trainer, args), "counted_tokens_all_steps": sum(clock.tokens)},
    )


def effective_settings(trainer: Any, args: Any) -> dict[str, Any]:
    """What TRL actually ran with, read back after construction (SFTConfig changes some values itself)."""
    logs = [entry for entry in trainer.state.log_history if "num_tokens" in entry]
    completion_only = bool(getattr(trainer, "completion_only_loss", False))
    return {
        "bf16": args.bf16,
        "mixed_precision": str(trainer.accelerator.mixed_precision),
        "gradient_checkpointing": args.gradient_checkpointing,
        "model_gc_active": bool(getattr(trainer.model, "is_gradient_checkpointing", False)),
        "packing": args.packing,
        "padding_free": bool(getattr(trainer, "padding_free", False)),
        "completion_only_loss": completion_only,
        "loss_on": "completion" if completion_only else "all tokens",
        "learning_rate": args.learning_rate,
        "lr_scheduler": getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type),
        "optim": getattr(args.optim, "value", args.optim),
        # TRL's own cumulative count of input tokens: must equal `counted_tokens_all_steps` (our rule)
        "trl_num_tokens_all_steps": int(float(logs[-1]["num_tokens"])) if logs else None,
    }
