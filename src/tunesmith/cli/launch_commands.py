"""`tunesmith train cfg.yaml --launch.num_processes=N`: re-execute the same command through `accelerate launch`.

The parent process only builds accelerate's launch arguments and waits; accelerate (its torchrun-based launcher)
starts N copies of `python -m tunesmith.cli.main train ...` with RANK / LOCAL_RANK / WORLD_SIZE set, and each copy
trains its share (`tunesmith.train.distributed`). The same thing by hand, e.g. on a cluster's job script:

    accelerate launch --multi_gpu --num_processes 4 -m tunesmith.cli.main train cfg.yaml --launch.num_processes=4

(`--multi_gpu` selects accelerate's torchrun launcher; on a machine without GPUs the processes talk over gloo.)
Multi-node: the same command on every machine, each with its own `--launch.machine_rank`; see README "Scale out".
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from tunesmith.core.errors import TunesmithError

if TYPE_CHECKING:
    from tunesmith.config import Config
    from tunesmith.config.launch_schema import LaunchConfig


def needs_launch(launch: LaunchConfig) -> bool:
    """True in the user's process when the config asks for more than this one process (or a sharded backend);
    False inside a launched process (the launcher sets LOCAL_RANK)."""
    wanted = launch.num_processes > 1 or launch.num_machines > 1 or launch.backend != "ddp"
    return wanted and "LOCAL_RANK" not in os.environ


def accelerate_args(launch: LaunchConfig, train_argv: list[str]) -> list[str]:
    """`accelerate launch` arguments that run `tunesmith.cli.main` with `train_argv` on every process."""
    mixed = "no" if launch.mixed_precision == "auto" else launch.mixed_precision  # the loop autocasts itself
    args = [
        "--multi_gpu",
        "--num_processes", str(launch.num_processes),
        "--num_machines", str(launch.num_machines),
        "--machine_rank", str(launch.machine_rank),
        "--main_process_port", str(launch.main_process_port),
        "--mixed_precision", mixed,
        "--dynamo_backend", "no",
    ]
    if launch.main_process_ip:
        args += ["--main_process_ip", launch.main_process_ip]
    return [*args, "--module", "tunesmith.cli.main", *train_argv]


def train_argv(args: argparse.Namespace, overrides: list[str], cfg: Config) -> list[str]:
    """The `tunesmith train` command line for the launched processes, with the run id fixed here so that every
    process (and every machine) writes to and resumes from the same run folder."""
    from tunesmith.config import config_hash
    from tunesmith.track.run_dir import new_run_id

    argv = ["train"]
    if args.config:
        argv.append(str(args.config))
    if getattr(args, "no_eval", False):
        argv.append("--no-eval")
    if getattr(args, "resume", None):
        argv += ["--resume", str(args.resume)]
    argv += overrides
    if cfg.run.run_id is None:
        argv.append(f"--run.run_id={new_run_id(config_hash(cfg))}")
    return argv


def relaunch_train(args: argparse.Namespace, overrides: list[str], cfg: Config) -> int:
    """Run the training command on `cfg.launch.num_processes` processes through accelerate; 0 when all succeed."""
    from accelerate.commands.launch import launch_command, launch_command_parser

    launch = cfg.launch
    command = accelerate_args(launch, train_argv(args, overrides, cfg))
    where = f" (machine {launch.machine_rank} of {launch.num_machines})" if launch.num_machines > 1 else ""
    print(f"launching {launch.num_processes} processes{where} with accelerate, backend {launch.backend}", flush=True)
    try:
        launch_command(launch_command_parser().parse_args(command))
    except Exception as exc:  # torchrun's ChildFailedError, or accelerate refusing its arguments
        raise TunesmithError(
            f"the launched training failed ({type(exc).__name__}); the processes' own messages are above. "
            "Rerun the same command to resume from the last checkpoint"
        ) from exc
    return 0
