"""The one training loop. Strategies (`tunesmith.train.strategy`) plug into it; nothing else copies it.

Usage (a recipe does this after loading the model, applying the adapter and encoding the data)::

    run = RunDir.create("runs", config_dict, seed=0, device="cpu")
    result = train(model, train_rows, val_rows, cfg.train, run, device=torch.device("cpu"),
                   autocast_dtype=torch.bfloat16, collate=collate_fn, seed=0)

Guarantees: the batch order is a pure function of (seed, epoch); the loss is normalised by the target tokens of
the whole optimizer step (so grad accumulation equals one large batch); on CPU the run is deterministic, and a
run killed at any point and resumed from its newest checkpoint ends with bitwise the same trainable weights as
an uninterrupted one. The model is expected on `device` already; batches are moved there.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.core.errors import CheckpointError
from tunesmith.encode.pack import count_target_tokens, count_tokens
from tunesmith.train import distributed
from tunesmith.train.batches import BatchSource, EpochBatches
from tunesmith.train.checkpoint import latest_complete_checkpoint, load_checkpoint, save_checkpoint
from tunesmith.train.loss import causal_lm_loss
from tunesmith.train.optim import build_optimizer, build_scheduler, steps_per_epoch, total_steps, warmup_steps_for
from tunesmith.train.strategy import Strategy, make_strategy

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tunesmith.config.schema import TrainConfig
    from tunesmith.track.run_dir import RunDir, Tracker


@dataclass
class TrainResult:
    """What a finished `train` call reports (the same numbers are in metrics.jsonl)."""

    steps: int
    resumed_from_step: int | None
    train_loss: float | None
    """Token-weighted mean training loss over the last logging window."""
    val_loss: float | None
    metrics: list[dict[str, Any]]
    last_checkpoint: Path | None
    elapsed_s: float
    steps_per_s: float
    """Optimizer steps per second in this process (excludes the steps restored from a checkpoint)."""
    tokens_per_s: float


@dataclass
class _Window:
    """Running totals between two log lines."""

    loss_sum: float = 0.0
    targets: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)


@dataclass
class _Run:
    """Everything the loop body needs, built once by `_prepare`."""

    model: nn.Module  # the model as given: checkpoints and evaluation use it
    train_model: nn.Module  # what the strategy returned (may wrap `model`)
    optimizer: Any
    scheduler: Any
    strategy: Strategy
    batches: BatchSource
    val_batches: EpochBatches | None
    cfg: TrainConfig
    run: RunDir
    trackers: list[Tracker]
    device: torch.device
    autocast_dtype: torch.dtype | None
    scaler: Any
    total: int
    per_epoch: int
    meta: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    elapsed_before: float = 0.0
    cumulative_targets: int = 0


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def deterministic_algorithms(device: torch.device) -> Iterator[None]:
    """Deterministic kernels on CPU for the duration of training (restored after; CUDA would need
    CUBLAS_WORKSPACE_CONFIG set before start-up, so it is left to the user there)."""
    import torch
    import torch.utils.deterministic as det_settings

    before = torch.are_deterministic_algorithms_enabled()
    warn_before = torch.is_deterministic_algorithms_warn_only_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
        # CPU kernels are deterministic already; NaN-filling every new tensor only costs time (~5% of a step)
        fill_before = det_settings.fill_uninitialized_memory  # type: ignore[attr-defined]
        det_settings.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_before)
        if device.type == "cpu":
            det_settings.fill_uninitialized_memory = fill_before  # type: ignore[attr-defined]


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if hasattr(v, "to") else v for k, v in batch.items()}


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    import torch

    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else nullcontext()


def accumulate_gradients(
    model: nn.Module,
    strategy: Strategy,
    batches: Sequence[dict[str, Any]],
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    scaler: Any = None,
    divisor: float | None = None,
) -> tuple[float, int, int]:
    """Backward over the micro-batches of one optimizer step: (loss sum, target tokens, input tokens).

    Each micro-batch's summed loss is divided by the target tokens of *all* of them, so the gradient equals
    that of one batch holding every micro-batch (a per-micro-batch mean would over-weight short answers).
    `divisor` replaces that count (a data-parallel rank passes the global step's count, see train.distributed).
    """
    n_step = sum(count_target_tokens(b) for b in batches)
    divide_by = divisor if divisor is not None else max(n_step, 1)
    loss_sum, n_inputs = 0.0, 0
    for i, batch in enumerate(batches):
        n_inputs += count_tokens(batch)  # before the move: a moved batch is a plain dict without the pad count
        batch = _to_device(batch, device)
        with _autocast(device, autocast_dtype):
            loss, _ = strategy.compute_loss(model, batch)
        scaled = loss / divide_by
        distributed.current().backward(scaler.scale(scaled) if scaler is not None else scaled, i == len(batches) - 1)
        loss_sum += float(loss.detach())
    return loss_sum, n_step, n_inputs


def _optimizer_step(r: _Run, step: int) -> tuple[float, int, int]:
    """One optimizer step (all its micro-batches); returns (loss sum, target tokens, input tokens)."""
    accum = max(1, r.cfg.grad_accum_steps)
    epoch, first = divmod(step, r.per_epoch)
    lo = first * accum
    hi = min(lo + accum, r.batches.num_batches())
    dp = distributed.current()  # one process: this rank takes every micro-batch and the calls below are no-ops
    dp.seed_step(r.meta["seed"], step)
    micro = dp.local_batches(r.batches, epoch, lo, hi)
    own_backward = getattr(r.strategy, "accumulate_gradients", None)  # DP-SGD forms per-example clipped gradients
    if own_backward is not None:
        loss_sum, n_targets, n_inputs = own_backward(r.train_model, micro, r.device, r.autocast_dtype)
    else:
        # one process divides by the step's own count, which accumulate_gradients takes anyway
        divisor = dp.loss_divisor(sum(count_target_tokens(b) for b in micro)) if dp.enabled else None
        loss_sum, n_targets, n_inputs = accumulate_gradients(
            r.train_model, r.strategy, micro, r.device, r.autocast_dtype, r.scaler, divisor
        )
    loss_sum, n_targets, n_inputs = dp.sync(r.train_model, loss_sum, n_targets, n_inputs)
    r.strategy.after_backward(r.train_model)
    if r.scaler is not None:
        r.scaler.unscale_(r.optimizer)
    if r.cfg.max_grad_norm is not None and not r.strategy.handles_clipping:
        params = [p for group in r.optimizer.param_groups for p in group["params"]]
        dp.clip_grad_norm(r.train_model, params, r.cfg.max_grad_norm)
    if r.scaler is not None:
        r.scaler.step(r.optimizer)
        r.scaler.update()
    else:
        r.optimizer.step()
    r.scheduler.step()
    r.optimizer.zero_grad(set_to_none=True)
    return loss_sum, n_targets, n_inputs


def evaluate_loss(
    model: nn.Module, batches: EpochBatches, device: torch.device, autocast_dtype: torch.dtype | None = None
) -> float | None:
    """Token-weighted mean loss over all batches (None when there is no target token)."""
    return evaluate_loss_and_targets(model, batches, device, autocast_dtype)[0]


def evaluate_loss_and_targets(
    model: nn.Module, batches: EpochBatches, device: torch.device, autocast_dtype: torch.dtype | None = None
) -> tuple[float | None, int]:
    """(`evaluate_loss`, the target tokens it averages over): a federated client's weight in the global loss."""
    import torch

    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(batches.num_batches()):
            batch = _to_device(batches.batch(0, i), device)
            with _autocast(device, autocast_dtype):
                loss, count = causal_lm_loss(model, batch, reduction="sum")
            total, n = total + float(loss), n + count
    model.train(was_training)
    return (total / n if n else None), n


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Recompute activations in backward (HF models, also inside a peft wrapper)."""
    kwargs = {"use_reentrant": False}
    enable = getattr(model, "activation_checkpointing_enable", None)  # the transformers >= 5.x name
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)  # type: ignore[operator]
    if hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()  # type: ignore[operator]  # peft: frozen embeddings cut the graph


def _prepare(
    model: nn.Module, train_data: Sequence[Any], val_data: Sequence[Any] | None, cfg: TrainConfig, run: RunDir,
    device: torch.device, autocast_dtype: torch.dtype | None, collate: Callable[[list[Any]], dict[str, Any]],
    strategy: Strategy, seed: int, trackers: list[Tracker],
) -> _Run:
    import torch

    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    model.train()
    source: BatchSource = EpochBatches(train_data, cfg.batch_size, collate, seed=seed)
    accum = max(1, cfg.grad_accum_steps)
    total = total_steps(source.num_batches(), accum, cfg.epochs, cfg.max_steps)
    optimizer: torch.optim.Optimizer = build_optimizer(model, cfg.learning_rate, cfg.weight_decay)
    train_model, optimizer, source = strategy.setup(model, optimizer, source)
    train_model, optimizer = distributed.current().prepare(train_model, optimizer)  # FSDP / DeepSpeed wrap here
    scheduler = build_scheduler(optimizer, cfg.schedule, warmup_steps_for(cfg, total), total)
    fp16_cuda = autocast_dtype == torch.float16 and device.type == "cuda"
    val = EpochBatches(val_data, cfg.batch_size, collate, shuffle=False) if val_data else None
    meta = {"total_steps": total, "num_batches": source.num_batches(), "grad_accum_steps": accum,
            "batch_size": cfg.batch_size, "seed": seed, "num_train_items": len(train_data)}
    return _Run(
        model=model, train_model=train_model, optimizer=optimizer, scheduler=scheduler, strategy=strategy,
        batches=source, val_batches=val, cfg=cfg, run=run, trackers=trackers, device=device,
        autocast_dtype=autocast_dtype, scaler=torch.amp.GradScaler("cuda") if fp16_cuda else None, total=total,
        per_epoch=steps_per_epoch(source.num_batches(), accum), meta=meta,
    )


def _resume(r: _Run) -> int | None:
    """Load the newest checkpoint per `cfg.resume`; returns the step resumed from, or None for a fresh start."""
    resumable = r.cfg.resume != "never" and distributed.current().can_checkpoint  # not with sharded state
    latest = latest_complete_checkpoint(r.run.path) if resumable else None
    if latest is None:
        if r.cfg.resume == "must":
            raise CheckpointError(
                f"train.resume=must but {r.run.path} has no complete checkpoint: "
                "set train.resume=auto to start fresh, or pass the run id of an interrupted run"
            )
        return None
    state = load_checkpoint(latest, model=r.model, optimizer=r.optimizer, scheduler=r.scheduler,
                            strategy=r.strategy)
    changed = {k: (state.meta.get(k), v) for k, v in r.meta.items() if state.meta.get(k) != v}
    if changed:
        detail = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in changed.items())
        raise CheckpointError(f"cannot resume {latest}: the run's shape changed ({detail}); "
                              "use the original data and train config, or train.resume=never for a new run")
    if r.scaler is not None and "scaler" in state.extra:
        r.scaler.load_state_dict(state.extra["scaler"])
    r.metrics = list(state.metrics)
    r.elapsed_before = float(state.extra.get("elapsed_s", 0.0))
    r.cumulative_targets = int(state.extra.get("target_tokens", 0))
    if distributed.current().is_main:
        r.run.reset_metrics(r.metrics)  # drop lines logged after this checkpoint by the interrupted process
    return state.step


def _save(r: _Run, step: int, started: float) -> Path | None:
    """Rank 0 writes the checkpoint (the replicas hold the same state); the other ranks wait for it."""
    dp = distributed.current()
    if not dp.can_checkpoint:
        return None
    path = _write_checkpoint(r, step, started) if dp.is_main else None
    dp.barrier()
    return path


def _write_checkpoint(r: _Run, step: int, started: float) -> Path:
    extra: dict[str, Any] = {"elapsed_s": r.elapsed_before + time.perf_counter() - started,
                             "target_tokens": r.cumulative_targets}
    if r.scaler is not None:
        extra["scaler"] = r.scaler.state_dict()
    epoch, within = divmod(step, r.per_epoch)
    return save_checkpoint(
        r.run.path, step=step, epoch=epoch, batch_index=within * max(1, r.cfg.grad_accum_steps),
        model=r.model, optimizer=r.optimizer, scheduler=r.scheduler, strategy=r.strategy, metrics=r.metrics,
        meta=r.meta, extra=extra, keep=r.cfg.keep_checkpoints,
    )


def _log(r: _Run, row: dict[str, Any]) -> None:
    r.metrics.append(row)
    for tracker in r.trackers:
        tracker.log_metrics(row["step"], {k: v for k, v in row.items() if k != "step"})


def _window_row(r: _Run, step: int, window: _Window, started: float) -> dict[str, Any]:
    seconds = max(time.perf_counter() - window.started, 1e-9)
    return {
        "step": step,
        "epoch": round(step / r.per_epoch, 4),
        "loss": window.loss_sum / window.targets if window.targets else None,
        "lr": r.scheduler.get_last_lr()[0],
        "tokens_per_s": window.tokens / seconds,
        "target_tokens": r.cumulative_targets,
        "elapsed_s": r.elapsed_before + time.perf_counter() - started,
        **r.strategy.metrics(),
    }


def _progress_enabled() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def _make_progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[tps]} tok/s"), TimeRemainingColumn(), disable=not _progress_enabled(),
    )


def train(
    model: nn.Module,
    train_data: Sequence[Any],
    val_data: Sequence[Any] | None,
    cfg: TrainConfig,
    run: RunDir,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    collate: Callable[[list[Any]], dict[str, Any]],
    strategy: Strategy | str | None = None,
    seed: int = 0,
    trackers: list[Tracker] | None = None,
    on_validation: Callable[[int, float | None], None] | None = None,
) -> TrainResult:
    """Train `model`'s trainable parameters on `train_data` (a list of packed rows or examples).

    `collate(list_of_items)` builds a batch dict (input_ids, labels with -100, position_ids[, attention_mask]).
    Resumes per `cfg.resume`; checkpoints every `cfg.save_every_steps` and at the end; logs every
    `cfg.log_every_steps` to the trackers (default: the run folder's metrics.jsonl). `strategy` is a ready
    strategy (recipes build it with `make_strategy(name, cfg)`) or a registered name (default `cfg.strategy`).
    `on_validation(step, val_loss)` is called after each validation pass (a search uses it to prune a trial;
    an exception it raises stops training there).
    """
    from tunesmith.track.run_dir import RunDirTracker

    seed_everything(seed)
    with deterministic_algorithms(device):
        main = distributed.current().is_main  # with several processes only rank 0 logs
        sinks: list[Tracker] = trackers if trackers is not None else ([RunDirTracker(run)] if main else [])
        if not isinstance(strategy, Strategy):
            strategy = make_strategy(strategy or cfg.strategy)
        r = _prepare(model, train_data, val_data, cfg, run, device, autocast_dtype, collate, strategy, seed, sinks)
        resumed_from = _resume(r)
        distributed.current().require_same(resumed_from, "the step to resume from")  # no-op in one process
        return _run_steps(r, resumed_from, on_validation)


def _run_steps(
    r: _Run, resumed_from: int | None, on_validation: Callable[[int, float | None], None] | None = None
) -> TrainResult:
    started = time.perf_counter()
    first = resumed_from or 0
    window, last_loss, last_ckpt, tokens_done, val_loss = _Window(), None, None, 0, None
    with _make_progress() as progress:
        task = progress.add_task("train", total=r.total, completed=first, loss="-", tps="-")
        for step in range(first, r.total):
            loss_sum, n_targets, n_inputs = _optimizer_step(r, step)
            done = step + 1
            window.loss_sum += loss_sum
            window.targets += n_targets
            window.tokens += n_inputs
            tokens_done += n_inputs
            r.cumulative_targets += n_targets
            if done % max(1, r.cfg.log_every_steps) == 0 or done == r.total:
                row = _window_row(r, done, window, started)
                last_loss = row["loss"]
                _log(r, row)
                progress.update(task, loss=f"{last_loss:.4f}" if last_loss is not None else "-",
                                tps=f"{row['tokens_per_s']:.0f}")
                window = _Window()
            if r.val_batches is not None and (done == r.total or (
                    r.cfg.eval_every_steps and done % r.cfg.eval_every_steps == 0)):
                val_loss = evaluate_loss(r.model, r.val_batches, r.device, r.autocast_dtype)
                _log(r, {"step": done, "val_loss": val_loss})
                if on_validation is not None:
                    on_validation(done, val_loss)
            if done % max(1, r.cfg.save_every_steps) == 0 or done == r.total:
                last_ckpt = _save(r, done, started)
            progress.update(task, completed=done)
    if val_loss is None and r.val_batches is not None:  # resumed a finished run: still report val loss
        val_loss = evaluate_loss(r.model, r.val_batches, r.device, r.autocast_dtype)
    seconds = time.perf_counter() - started
    ran = r.total - first
    return TrainResult(
        steps=r.total, resumed_from_step=resumed_from, train_loss=last_loss, val_loss=val_loss,
        metrics=list(r.metrics), last_checkpoint=last_ckpt or latest_complete_checkpoint(r.run.path),
        elapsed_s=r.elapsed_before + seconds, steps_per_s=ran / seconds if ran and seconds > 0 else math.nan,
        tokens_per_s=tokens_done / seconds if seconds > 0 else math.nan,
    )
