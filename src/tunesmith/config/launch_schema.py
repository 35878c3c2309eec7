"""The `launch:` block: how many processes train, on how many machines, and how the model is spread over them.

`tunesmith train cfg.yaml --launch.num_processes=4` re-executes the command through Hugging Face accelerate's
launcher (torchrun underneath); each process then runs the same training loop on its share of every optimizer
step (see `tunesmith.train.distributed`). This module imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tunesmith.config.rules import need_into
from tunesmith.core.errors import Problem

FSDP_SHARDING = {"full": "FULL_SHARD", "hybrid": "HYBRID_SHARD", "grad_op": "SHARD_GRAD_OP"}


@dataclass
class LaunchConfig:
    """Data-parallel training over several processes / GPUs / machines through accelerate."""

    num_processes: int = 1
    """Training processes over ALL machines (accelerate's meaning); 1 trains in this process, on one device."""
    backend: Literal["ddp", "fsdp", "deepspeed"] = "ddp"
    """`ddp`: every process holds the model, gradients are summed; `fsdp` / `deepspeed` shard it (CUDA only)."""
    fsdp_sharding: Literal["full", "hybrid", "grad_op"] = "full"
    """FSDP: `full` shards weights, grads and optimizer state; `hybrid` shards within a machine only; `grad_op`."""
    zero_stage: int = 2
    """DeepSpeed ZeRO stage: 2 shards optimizer state and gradients, 3 also the weights (needs `deepspeed`)."""
    num_machines: int = 1
    """Machines taking part; run the same command on each with its own `machine_rank`."""
    machine_rank: int = 0
    """This machine's index, 0 .. num_machines-1; machine 0 hosts the rendezvous."""
    main_process_ip: str | None = None
    """Address of machine 0, reachable from the others (needed when num_machines > 1)."""
    main_process_port: int = 29500
    """Free TCP port on machine 0 for the rendezvous."""
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    """Passed to accelerate (FSDP/DeepSpeed precision policy); `auto` follows model.precision."""


def launch_problems(cfg: LaunchConfig) -> list[Problem]:
    """Every rule of the launch block that `cfg` breaks, naming the field and the fix."""
    problems: list[Problem] = []
    need = need_into(problems, "launch")

    need(cfg.num_processes >= 1, "num_processes", cfg.num_processes, "a positive integer")
    need(cfg.num_machines >= 1, "num_machines", cfg.num_machines, "a positive integer")
    need(0 <= cfg.machine_rank < max(cfg.num_machines, 1), "machine_rank", cfg.machine_rank,
         f"0 .. num_machines-1 ({cfg.num_machines - 1})")
    need(cfg.num_processes % max(cfg.num_machines, 1) == 0, "num_processes", cfg.num_processes,
         f"a multiple of num_machines ({cfg.num_machines})", "num_processes counts the processes of all machines")
    need(cfg.num_machines == 1 or bool(cfg.main_process_ip), "main_process_ip", cfg.main_process_ip,
         "the address of machine 0 when num_machines > 1")
    need(0 < cfg.main_process_port < 65536, "main_process_port", cfg.main_process_port, "a TCP port")
    need(cfg.zero_stage in (2, 3), "zero_stage", cfg.zero_stage, "2 or 3")
    return problems
