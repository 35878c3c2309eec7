"""`tunesmith federated sim cfg.yaml`: federated fine-tuning of the adapter, all clients on this machine.

    tunesmith federated sim run.yaml --federated.num_clients=3 --federated.rounds=3
    tunesmith federated sim run.yaml --federated.partition=non_iid --federated.algorithm=fedprox
    tunesmith federated sim run.yaml --federated.dp.enabled=true --federated.dp.noise_multiplier=1.0

Several machines: `tunesmith federated deploy run.yaml` prints the `flower-superlink`, `flower-supernode` and
`flwr run` commands that run the same ClientApp and ServerApp as real processes (README, "Federated fine-tuning").
"""

from __future__ import annotations

import argparse
from typing import Any

from tunesmith.config import load_config
from tunesmith.core.errors import TunesmithError


def add_federated_verb(verbs: Any) -> None:
    federated = verbs.add_parser("federated", help="federated fine-tuning over adapters (Flower)")
    actions = federated.add_subparsers(dest="federated_verb", metavar="ACTION")
    sim = actions.add_parser("sim", help="simulate the clients and the server on this machine; writes runs/<id>/")
    sim.add_argument("config", nargs="?", help="YAML config with a `federated:` block (default: built-in defaults)")
    deploy = actions.add_parser("deploy", help="print the SuperLink / SuperNode / flwr run commands for a config")
    deploy.add_argument("config", help="YAML config with a `federated:` block")


def federated(args: argparse.Namespace, overrides: list[str]) -> int:
    if args.federated_verb not in ("sim", "deploy"):  # like `tunesmith data`: a usage error exits 2 on stderr
        raise TunesmithError("usage: tunesmith federated {sim,deploy} cfg.yaml [--federated.field=value ...]")
    cfg = load_config(args.config, overrides)
    if args.federated_verb == "deploy":
        print(deploy_commands(cfg, args.config, overrides))
        return 0  # config errors surface before flwr and torch are imported
    from tunesmith.recipes.federated import federated_simulation

    result = federated_simulation(cfg)
    report = result.report
    print(f"run folder: {result.run_dir}\nadapter:    {result.adapter_dir}\n"
          f"val loss:   {report['initial_val_loss']} -> {report['final_val_loss']}")
    return 0


def deploy_commands(cfg: Any, config_path: str, overrides: list[str]) -> str:
    """The shell commands that run this config on a SuperLink and one SuperNode per client."""
    from pathlib import Path

    host, _, port = cfg.federated.server_address.rpartition(":")
    bind = host if host in ("127.0.0.1", "localhost") else "0.0.0.0"  # reachable from the other machines
    clients = cfg.federated.clients or [None] * cfg.federated.num_clients
    extra = f" overrides='{' '.join(overrides)}'" if overrides else ""
    lines = [
        "# Flower's config (FLWR_HOME, default ~/.flwr): a connection to the SuperLink for `flwr run`",
        f"cat >> ${{FLWR_HOME:-$HOME/.flwr}}/config.toml <<'TOML'\n[superlink.tunesmith]\naddress = \"{host}:{port}\"\n"
        "insecure = true\nTOML",
        "# the server machine (tunesmith[federated] installed and on PATH; drop --insecure once TLS certs are set)",
        f"flower-superlink --insecure --host {bind} --port {port} --disable-runtime-dependency-installation",
        "# one SuperNode per client, each on its own machine with its own data",
    ]
    for k, data_file in enumerate(clients):
        node = f"partition-id={k} num-partitions={len(clients)}" + (f" data-file='{data_file}'" if data_file else "")
        lines.append(f'flower-supernode --insecure --superlink {host}:{port} --port {9100 + k} --node-config "{node}"')
    lines += ["# start the run (from a checkout of the repository)",
              f"flwr run examples/federated_app tunesmith --run-config \"config-file='{Path(config_path).resolve()}'"
              f"{extra}\" --stream"]
    return "\n".join(lines)
