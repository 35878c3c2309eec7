"""The GPU check's trainer runs (see `gpu_check.py`): tunesmith LoRA / QLoRA and TRL SFTTrainer + peft LoRA on one
device, same model, data, rows, batch, length, learning-rate schedule and steps as the CPU throughput benchmark.

Each function runs inside a spawned child process and returns a `RunResult` whose notes carry the peak GPU memory
(`torch.cuda.max_memory_allocated` over the training, reset after the model is loaded). With `device="cpu"` the
same code runs on the CPU (the dry run that checks the script before a GPU machine is spent on it).
"""

from __future__ import annotations

import dataclasses
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
    count_real_tokens,
    load_bench_model,
    lora_flops_per_token,
    peak_rss_mb,
    prepare_child,
)


def _reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gpu_mb(device: Any) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def _ours_model(method: str, device: Any, autocast_dtype: Any) -> tuple[Any, Any]:
    from tunesmith.config.schema import AdapterConfig, ModelConfig
    from tunesmith.models.adapters import apply_adapter, place_for_training
    from tunesmith.models.load import load_quantized

    adapter = AdapterConfig(method=method, r=LORA_R, alpha=LORA_ALPHA, dropout=LORA_DROPOUT)  # type: ignore[arg-type]
    if method == "qlora":
        model, tokenizer = load_quantized(ModelConfig(device="cuda"))
    else:
        model, tokenizer, _ = load_bench_model()
    model = apply_adapter(model, adapter)
    return place_for_training(model, method, device, autocast_dtype), tokenizer


def run_ours_on(spec: RunSpec, device_name: str, method: str = "lora") -> RunResult:
    """Our loop with LoRA (or QLoRA) on `device_name`, bf16 autocast, packed rows, answer-only loss."""
    import torch
    from _ours_run import ClockTracker, encoded_rows

    from tunesmith.config.schema import TrainConfig
    from tunesmith.encode.pack import collate_packed
    from tunesmith.models.device import resolve_precision
    from tunesmith.track.run_dir import RunDir
    from tunesmith.train.loop import train
    from tunesmith.train.optim import uses_paged_optimizer

    prepare_child(spec.threads)
    device = torch.device(device_name)
    autocast_dtype = resolve_precision(device, "bf16")
    model, tokenizer = _ours_model(method, device, autocast_dtype)
    rows, _ = encoded_rows(tokenizer, spec)
    cfg = TrainConfig(
        learning_rate=LEARNING_RATE, schedule=LR_SCHEDULE, warmup_steps=LR_WARMUP_STEPS, weight_decay=0.0,
        max_grad_norm=1.0, batch_size=spec.batch_size, max_steps=spec.total_steps, gradient_checkpointing=False,
        log_every_steps=1, save_every_steps=10**9, resume="never",
    )
    clock = StepClock(warmup=spec.warmup_steps)
    collate_rows = functools.partial(collate_packed, pad_id=tokenizer.pad_token_id)

    def counting_collate(items: list[Any]) -> dict[str, Any]:
        batch = collate_rows(items)
        clock.add_tokens(count_real_tokens(batch))
        return batch

    class SyncedClock(ClockTracker):
        def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # the step's kernels are done before its mark
            super().log_metrics(step, metrics)

    _reset_peak(device)
    with tempfile.TemporaryDirectory(prefix="gpu-check-ours-") as out_dir:
        run = RunDir.create(out_dir, {"bench": "gpu_check"}, run_id="bench", seed=SEED, device=str(device))
        clock.start()
        train(model, rows, None, cfg, run, device, autocast_dtype, counting_collate, seed=SEED,
              trackers=[SyncedClock(clock)])
    tokens, seconds = clock.timed()
    return RunResult(
        name=f"ours_{method}", tokens_per_s=tokens / seconds, timed_tokens=tokens, timed_seconds=seconds,
        step_losses=clock.losses, peak_rss_mb=peak_rss_mb(),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        flops_per_token=lora_flops_per_token(model),
        notes={"device": str(device), "peak_gpu_mb": _peak_gpu_mb(device), "method": method,
               "autocast": str(autocast_dtype), "packed_rows": len(rows),
               "attention": getattr(model.config, "_attn_implementation", None),
               "optimizer": "paged AdamW 8-bit" if uses_paged_optimizer(model) else "torch AdamW (fused)"},
    )


def run_trl_on(spec: RunSpec, device_name: str) -> RunResult:
    """TRL SFTTrainer + peft LoRA at TRL's best settings (bf16, BFD packing, padding-free, completion-only loss)
    with the same optimisation settings; the frozen base is stored in bf16 as usual for LoRA on a GPU."""
    import torch
    from _trl_run import effective_settings, sft_config, trl_dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    prepare_child(spec.threads)
    device = torch.device(device_name)
    model, tokenizer, _ = load_bench_model()
    if device.type == "cuda":
        model = model.to(torch.bfloat16)
    clock = StepClock(warmup=spec.warmup_steps)

    class TimedSFTTrainer(SFTTrainer):  # type: ignore[misc]
        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            clock.add_tokens(count_real_tokens(inputs))
            return super().training_step(model, inputs, *args, **kwargs)

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            _reset_peak(device)
            clock.start()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            clock.end_step()

    peft_config = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT, task_type="CAUSAL_LM",
                             target_modules="all-linear")
    with tempfile.TemporaryDirectory(prefix="gpu-check-trl-") as output_dir:
        args = sft_config("best", spec, output_dir)
        args = dataclasses.replace(args, use_cpu=device.type == "cpu", bf16=True)
        trainer = TimedSFTTrainer(model=model, args=args, train_dataset=trl_dataset(True, spec),
                                  processing_class=tokenizer, peft_config=peft_config, callbacks=[Clock()])
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    losses = [float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    tokens, seconds = clock.timed()
    return RunResult(
        name="trl", tokens_per_s=tokens / seconds, timed_tokens=tokens, timed_seconds=seconds, step_losses=losses,
        peak_rss_mb=peak_rss_mb(),
        trainable_params=sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        flops_per_token=lora_flops_per_token(trainer.model),
        notes={"device": str(device), "peak_gpu_mb": _peak_gpu_mb(device), **effective_settings(trainer, args),
               "attention": getattr(trainer.model.config, "_attn_implementation", None)},
    )
