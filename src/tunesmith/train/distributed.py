"""Data parallelism for the one training loop, with Hugging Face accelerate managing the processes.

`tunesmith train cfg.yaml --launch.num_processes=N` re-executes itself through `accelerate launch` (see
`tunesmith.train.launch`); in every process the recipe calls `start(cfg.launch, device)`, which lets accelerate's
`PartialState` join the process group (gloo on CPU, NCCL on CUDA) and records this process's rank in a
process-wide `DataParallel`. The loop (`tunesmith.train.loop`) asks `current()` for it; in a single process every
method is a no-op, so single-process training is untouched.

What one optimizer step does on N processes (backend `ddp`):

1. The step's micro-batches are the ones a single process would read (batch order is a pure function of
   (seed, epoch, index)); rank r takes micro-batches lo+r, lo+r+N, ... of them (`shard`).
2. The target tokens of the whole step are summed over the ranks (one all-reduce of a count) and every rank
   divides its summed losses by that global count, as the single process divides by the step's count.
3. After backward, one all-reduce sums the gradients (flattened per dtype; ranks without a micro-batch send
   zeros), so every rank holds the gradient of the whole global batch and takes the same optimizer step. The
   replicas therefore stay identical and equal single-process training up to float summation order.
4. Rank 0 writes the checkpoints and the metrics; the others wait at a barrier after each save.

Why not torch's DDP wrapper here: it all-reduces after every micro-batch's backward (or needs `no_sync` juggling)
and hangs when a rank has no micro-batch in a step (grad_accum_steps below N, or an epoch's short last step);
one all-reduce per optimizer step of LoRA's few million gradient values costs little next to the step itself.

Checkpoints hold the same state as a single-process run (the replicas are identical), so a run can be resumed with
any process count. RNG: dropout on rank r in step s draws from a generator seeded with (seed, s, r), re-seeded at
every step, so a resumed multi-process run is bitwise equal to an uninterrupted one with the same process count
(a checkpoint holds only rank 0's RNG state).

Backends `fsdp` / `deepspeed` hand the model and optimizer to accelerate's `FullyShardedDataParallelPlugin` /
`DeepSpeedPlugin` (CUDA only; accelerate falls back to plain DDP on CPU). They average gradients inside backward,
so the loss is scaled by N, and every rank must run the same number of forward passes, so ranks short of a
micro-batch run a copy with every label masked (zero loss, zero gradient). Their sharded optimizer state is not
written to tunesmith's checkpoints: mid-run checkpoints are skipped and resume is refused with these backends.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tunesmith.core.errors import CheckpointError, ConfigError, DependencyError, Problem

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tunesmith.config import Config
    from tunesmith.config.launch_schema import LaunchConfig
    from tunesmith.train.batches import BatchSource

log = logging.getLogger(__name__)
T = TypeVar("T")
SHARDED_BACKENDS = ("fsdp", "deepspeed")
SINGLE_PROCESS_STRATEGIES = ("dp", "federated")


@dataclass
class DataParallel:
    """This process's place in a data-parallel run; the default is the single process (rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = "ddp"
    accelerator: Any = None
    """The `accelerate.Accelerator` holding the FSDP / DeepSpeed plugin (sharded backends only)."""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or self.accelerator is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.accelerator is not None

    @property
    def can_checkpoint(self) -> bool:
        """Whether tunesmith's checkpoints can hold the run's state (not with sharded optimizer state)."""
        return not self.sharded

    # ------------------------------------------------------------------ the step

    def shard(self, lo: int, hi: int) -> list[int]:
        """This rank's micro-batch indices among the step's micro-batches lo..hi-1 (round robin)."""
        return list(range(lo + self.rank, hi, self.world_size))

    def local_batches(self, source: BatchSource, epoch: int, lo: int, hi: int) -> list[dict[str, Any]]:
        """This rank's micro-batches of the step; sharded backends pad with label-masked copies so every rank
        runs the same number of forward passes (their collectives run inside forward)."""
        batches = [source.batch(epoch, i) for i in self.shard(lo, hi)]
        if self.sharded:
            per_rank = -(-(hi - lo) // self.world_size)
            while len(batches) < per_rank:
                batches.append(masked_copy(source.batch(epoch, lo)))
        return batches

    def loss_divisor(self, local_targets: int) -> float:
        """What each summed micro-batch loss is divided by: the target tokens of the whole global step.

        Sharded backends average gradients over the ranks inside backward; dividing by count / N undoes that.
        """
        total = self.sum_ints([local_targets])[0] if self.enabled else local_targets
        return max(total, 1) / (self.world_size if self.sharded else 1)

    def seed_step(self, seed: int, step: int) -> None:
        """Re-seed torch's RNG from (seed, step, rank): dropout masks that survive a resume on any rank."""
        if not self.enabled:
            return
        import torch

        digest = hashlib.sha256(f"{seed}/{step}/{self.rank}".encode()).digest()
        torch.manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))

    def backward(self, loss: torch.Tensor, last: bool = True) -> None:
        """`loss.backward()`, through accelerate for sharded backends (DeepSpeed steps inside its engine)."""
        if self.accelerator is None:
            loss.backward()
            return
        self.accelerator.gradient_state._set_sync_gradients(last)
        self.accelerator.backward(loss)

    def sync(self, model: nn.Module, loss_sum: float, n_targets: int, n_inputs: int) -> tuple[float, int, int]:
        """Sum the gradients (ddp) and the step's statistics over the ranks; returns the global statistics."""
        if not self.enabled:
            return loss_sum, n_targets, n_inputs
        import torch

        params = [p for p in model.parameters() if p.requires_grad]
        stats = torch.tensor([loss_sum, n_targets, n_inputs] + [p.grad is not None for p in params],
                             dtype=torch.float64)
        stats = self._all_reduce(stats)
        if not self.sharded:
            self._sum_gradients([p for p, seen in zip(params, stats[3:].tolist(), strict=True) if seen])
        return float(stats[0]), int(stats[1]), int(stats[2])

    def clip_grad_norm(self, model: nn.Module, params: Sequence[torch.Tensor], max_norm: float) -> None:
        import torch

        if self.accelerator is not None:
            self.accelerator.clip_grad_norm_(model.parameters(), max_norm)
        else:
            torch.nn.utils.clip_grad_norm_(params, max_norm)

    def prepare(self, model: nn.Module, optimizer: Any) -> tuple[nn.Module, Any]:
        """Sharded backends: accelerate wraps the model (FSDP units / DeepSpeed engine) and the optimizer."""
        if self.accelerator is None:
            return model, optimizer
        return self.accelerator.prepare(model, optimizer)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ coordination

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def sum_ints(self, values: list[int]) -> list[int]:
        import torch

        if self.world_size == 1:
            return list(values)
        return [int(v) for v in self._all_reduce(torch.tensor(values, dtype=torch.float64)).tolist()]

    def broadcast_object(self, obj: T) -> T:
        """Rank 0's `obj` on every rank (a small picklable value, sent between our own processes)."""
        if self.world_size == 1:
            return obj
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([obj], from_process=0)[0]  # type: ignore[no-any-return]

    def require_same(self, value: Any, what: str) -> None:
        """Fail unless every rank holds rank 0's `value` (e.g. the step resumed from: a machine that cannot see
        the run folder's checkpoints would otherwise train from step 0 beside the others)."""
        expected = self.broadcast_object(value)
        if value != expected:
            raise CheckpointError(
                f"rank {self.rank} has {what} {value!r} but rank 0 has {expected!r}: every machine must see the "
                "same run folder (shared storage), or start a new run (train.resume=never)"
            )

    def main_first(self, make: Callable[[], T], share: Callable[[T], Any], rebuild: Callable[[Any], T]) -> T:
        """`make()` on rank 0 only (e.g. create the run folder); the others get `rebuild(share(rank 0's value))`."""
        value = make() if self.is_main else None
        shared = self.broadcast_object(share(value) if value is not None else None)
        return value if value is not None else rebuild(shared)

    def _device(self) -> torch.device:
        from accelerate import PartialState

        return PartialState().device  # type: ignore[no-any-return]

    def _all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over the ranks (accelerate's reduce: the process group accelerate set up, XLA aware)."""
        from accelerate.utils import reduce

        return reduce(tensor.to(self._device()), reduction="sum").to(tensor.device)  # type: ignore[no-any-return]

    def _sum_gradients(self, params: list[torch.Tensor]) -> None:
        """All-reduce (sum) the gradients of `params`, one flat buffer per (dtype, device); None counts as 0."""
        import torch
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        groups: dict[tuple[Any, Any], list[torch.Tensor]] = {}
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            groups.setdefault((p.grad.dtype, p.grad.device), []).append(p)
        for members in groups.values():
            grads = [p.grad for p in members]
            flat = self._all_reduce(_flatten_dense_tensors(grads))
            for p, summed in zip(members, _unflatten_dense_tensors(flat, grads), strict=True):
                p.grad.copy_(summed)  # type: ignore[union-attr]


def masked_copy(batch: dict[str, Any]) -> dict[str, Any]:
    """`batch` with every label masked and no tokens counted: a forward/backward that changes nothing."""
    import torch

    from tunesmith.encode.pack import Batch

    copy = Batch({k: v for k, v in batch.items()})
    copy["labels"] = torch.full_like(batch["labels"], -100)
    copy.num_tokens = 0
    return copy


_CURRENT = DataParallel()


def current() -> DataParallel:
    """This process's data-parallel context (the single-process default until `start` is called)."""
    return _CURRENT


def launched_world_size() -> int:
    """WORLD_SIZE set by the launcher (accelerate / torchrun), 1 when this process was not launched by one."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def start(
    launch: LaunchConfig, device: torch.device, cpu_threads: int | None = None
) -> tuple[DataParallel, torch.device]:
    """Join the process group when launched (LOCAL_RANK set) and return the context plus this rank's device.

    Outside a launcher this returns the single-process context and `device` unchanged. On CPU each process gets
    its share of the physical cores (`cpu_threads` overrides): N processes with all cores each would oversubscribe.
    """
    global _CURRENT
    if "LOCAL_RANK" not in os.environ:
        if launch.num_processes > 1 or launch.num_machines > 1:
            log.warning("launch.num_processes=%s but this process was not started by a launcher: training in "
                        "one process (use `tunesmith train`, which relaunches, or `accelerate launch -m ...`)",
                        launch.num_processes)
        _CURRENT = DataParallel()
        return _CURRENT, device
    import torch
    from accelerate import PartialState

    check_backend(launch, device)
    state = PartialState(cpu=device.type == "cpu")
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes))
    if device.type == "cuda":
        device = torch.device("cuda", state.local_process_index)
        torch.cuda.set_device(device)
    elif device.type == "cpu":
        from tunesmith.models.device import physical_cores_available, set_cpu_threads

        set_cpu_threads(cpu_threads or max(1, physical_cores_available() // local_world))
    accelerator = _sharded_accelerator(launch) if launch.backend in SHARDED_BACKENDS else None
    _CURRENT = DataParallel(rank=state.process_index, world_size=state.num_processes,
                            local_rank=state.local_process_index, local_world_size=local_world,
                            backend=launch.backend, accelerator=accelerator)
    return _CURRENT, device


def start_run(cfg: Config, device: torch.device) -> tuple[DataParallel, torch.device]:
    """`start` for a recipe, refusing strategies that cannot be split over processes.

    DP-SGD's noise and accountant are per process (N processes would add N times the noise and misreport
    epsilon), and a federated client is one process by design.
    """
    dp, device = start(cfg.launch, device, cfg.model.num_threads)
    if dp.enabled and cfg.train.strategy in SINGLE_PROCESS_STRATEGIES:
        raise ConfigError([Problem(
            "train.strategy", None, f"{cfg.train.strategy!r} runs in one process only",
            "drop --launch.num_processes (or set it to 1) for this strategy")])
    return dp, device


def stop() -> None:
    """Leave the process group (end of a launched run) and fall back to the single-process context."""
    global _CURRENT
    if _CURRENT.world_size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    _CURRENT = DataParallel()


def check_backend(launch: LaunchConfig, device: torch.device) -> None:
    """Sharded backends need CUDA GPUs (accelerate runs plain DDP on CPU) and, for DeepSpeed, the package."""
    import importlib.util

    if launch.backend not in SHARDED_BACKENDS:
        return
    if device.type != "cuda":
        raise ConfigError([Problem(
            "launch.backend", None, f"{launch.backend!r} needs CUDA GPUs (this run is on {device.type})",
            "use launch.backend=ddp on CPU; accelerate does not shard on CPU")])
    if launch.backend == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        raise DependencyError("launch.backend=deepspeed needs the deepspeed package: "
                              "pip install 'tunesmith[deepspeed]' (on a CUDA machine), or use launch.backend=fsdp")


def _sharded_accelerator(launch: LaunchConfig) -> Any:
    from accelerate import Accelerator

    from tunesmith.config.launch_schema import FSDP_SHARDING

    precision = None if launch.mixed_precision == "auto" else launch.mixed_precision
    if launch.backend == "fsdp":
        from accelerate.utils import FullyShardedDataParallelPlugin

        plugin = FullyShardedDataParallelPlugin(
            fsdp_version=1, sharding_strategy=FSDP_SHARDING[launch.fsdp_sharding], use_orig_params=True,
            auto_wrap_policy="transformer_based_wrap", state_dict_type="FULL_STATE_DICT",
        )
        return Accelerator(fsdp_plugin=plugin, mixed_precision=precision)
    from accelerate.utils import DeepSpeedPlugin

    plugin = DeepSpeedPlugin(zero_stage=launch.zero_stage, gradient_accumulation_steps=1)
    return Accelerator(deepspeed_plugin=plugin, mixed_precision=precision)
