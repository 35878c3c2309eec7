"""Federated fine-tuning of the adapter with Flower: `tunesmith federated sim cfg.yaml`.

    tunesmith federated sim configs/federated.yaml --federated.rounds=5 --federated.algorithm=fedprox

The ServerApp (this module) runs Flower's FedAvg/FedProx over the adapter tensors and writes the run folder; the
ClientApp (`recipes.federated_client`) trains each client with the one training loop. The same two apps run in
Flower's simulation engine (`federated.simulation_backend: ray`), on the in-process grid (`inprocess`), or as
real SuperLink/SuperNode processes (`examples/federated_app/`, see the README). The run folder:

    runs/<id>/config.yaml, manifest.json     as `tunesmith train` writes them
    runs/<id>/metrics.jsonl                  one line per round: global and per-client validation loss, epsilon
    runs/<id>/adapter/                       the final global adapter (peft, safetensors)
    runs/<id>/federated_report.json          every round's per-client train/validation numbers and the global loss
    runs/<id>/privacy_report.json            with federated.dp.enabled: epsilon, delta, noise, rounds
    runs/<id>/clients/client-<k>/round-NNN/  each client's local loop (metrics.jsonl, last checkpoint)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.config import Config, config_hash, config_to_dict
from tunesmith.recipes.federated_client import _base_model, build_client_app, client_count, config_from_context


@dataclass
class FederatedResult:
    """What a finished federated run reports (also in federated_report.json)."""

    run_dir: Path
    adapter_dir: Path
    report: dict[str, Any] = field(default_factory=dict)


def _data_hashes(cfg: Config) -> dict[str, str]:
    from tunesmith.data.bundled import resolve_data_source
    from tunesmith.data.load import file_sha256

    files = cfg.federated.clients or [cfg.data.train_file]
    paths = [resolve_data_source(f) for f in files]
    return {str(p): file_sha256(p) for p in paths}


def _round_row(server_round: int, entry: dict[str, Any]) -> dict[str, Any]:
    """One metrics.jsonl line: the round's global numbers and each client's validation loss."""
    row: dict[str, Any] = {"step": server_round, "round": server_round}
    if "evaluate" in entry:
        row["val_loss"] = entry["evaluate"].get("val_loss")
    if "train" in entry:
        row["loss"] = entry["train"].get("train_loss")
    if "epsilon" in entry:
        row["epsilon"] = entry["epsilon"]
    for client, values in sorted(entry.get("clients", {}).items()):
        if "val_loss" in values:
            row[f"client_{client}_val_loss"] = values["val_loss"]
    return row


def serve_rounds(cfg: Config, grid: Any, context: Any = None) -> FederatedResult:
    """The ServerApp's work: run folder, initial adapter, Flower's rounds, final adapter and reports."""
    from tunesmith.models.export import save_adapter
    from tunesmith.recipes.common import console
    from tunesmith.track.run_dir import RunDir
    from tunesmith.train.federated.adapter_arrays import (
        adapter_state,
        from_array_record,
        load_adapter_state,
        to_array_record,
    )
    from tunesmith.train.federated.server import build_strategy, run_rounds

    out, fed, n = console(), cfg.federated, client_count(cfg)
    model, tokenizer, device, _ = _base_model(cfg)
    run = RunDir.create(cfg.run.output_dir, config_to_dict(cfg), run_id=cfg.run.run_id, data_sha256=_data_hashes(cfg),
                        digest=config_hash(cfg), seed=cfg.run.seed, device=str(device))
    out.print(f"[bold]federated run[/] {run.path}: {n} clients, {fed.rounds} rounds, {fed.algorithm}"
              f"{', DP ' + fed.dp.mode if fed.dp.enabled else ''}")
    initial = adapter_state(model)
    strategy, history = build_strategy(fed, n)
    started = time.perf_counter()

    def on_round(server_round: int, entry: dict[str, Any]) -> None:
        row = _round_row(server_round, entry)
        run.append_metrics(row)
        loss = row.get("val_loss")
        out.print(f"round {server_round}: global val loss {loss:.4f}" if loss is not None else
                  f"round {server_round} done")

    extra = {"run-dir": str(run.path.resolve())}
    if fed.secure_aggregation:
        final = _secure_rounds(grid, context, cfg, n, initial, history, extra, on_round)
    else:
        result = run_rounds(strategy, history, grid, to_array_record(initial), fed, n, on_round=on_round,
                            extra_config=extra)
        final = from_array_record(result.arrays) if len(result.arrays) else initial
    load_adapter_state(model, final)
    adapter_dir = save_adapter(model, run.path / "adapter", tokenizer)
    report = _report(cfg, history, n, time.perf_counter() - started, grid)
    run.write_json("federated_report.json", report)
    manifest_extra: dict[str, Any] = {"federated": {k: report[k] for k in ("algorithm", "num_clients", "rounds")}}
    if report["dp"] is not None:  # privacy_report.json and the manifest's `privacy`, as a dp run records them
        from tunesmith.train.dp_accounting import record_privacy

        record_privacy(run, report["dp"])
    run.finish(**manifest_extra)
    out.print(f"adapter: {adapter_dir}")
    return FederatedResult(run.path, adapter_dir, report)


def _secure_rounds(grid: Any, context: Any, cfg: Config, n: int, initial: Any, history: Any,
                   extra: dict[str, Any], on_round: Any) -> Any:
    """SecAgg+ rounds (Flower's legacy workflow); the metrics lines are written when they end."""
    from collections import OrderedDict

    import torch
    from flwr.app import Context, RecordDict

    from tunesmith.train.federated.secure_aggregation import run_secagg_rounds

    context = context or Context(run_id=grid.run.run_id, node_id=0, node_config={}, state=RecordDict(),
                                 run_config={})
    arrays = run_secagg_rounds(grid, context, cfg.federated, n, [t.numpy() for t in initial.values()], history,
                               extra)
    for server_round, entry in sorted(history.rounds.items()):
        on_round(server_round, entry)
    return OrderedDict((name, torch.from_numpy(a)) for name, a in zip(initial, arrays, strict=True))


def _report(cfg: Config, history: Any, num_clients: int, elapsed_s: float, grid: Any) -> dict[str, Any]:
    fed = cfg.federated
    rounds = history.to_rows()
    return {
        "algorithm": fed.algorithm, "proximal_mu": fed.proximal_mu if fed.algorithm == "fedprox" else 0.0,
        "num_clients": num_clients, "rounds": fed.rounds, "local_steps": fed.local_steps,
        "local_epochs": fed.local_epochs if fed.local_steps is None else None,
        "partition": None if fed.clients else fed.partition,
        "dirichlet_alpha": fed.dirichlet_alpha if not fed.clients and fed.partition == "non_iid" else None,
        "client_files": fed.clients, "dp": history.accountant.report() if history.accountant else None,
        "secure_aggregation": fed.secure_aggregation,
        "initial_val_loss": history.global_val_loss(0), "final_val_loss": history.global_val_loss(fed.rounds),
        "per_round": rounds, "elapsed_s": round(elapsed_s, 2),
        "bytes_to_clients": getattr(grid, "bytes_sent", None),
        "bytes_from_clients": getattr(grid, "bytes_received", None),
    }


def build_server_app(cfg: Config | None = None, results: list[FederatedResult] | None = None) -> Any:
    """The ServerApp (`cfg=None`: read the config from the run config, as in deployment)."""
    from flwr.serverapp import ServerApp

    app = ServerApp()

    @app.main()
    def main(grid: Any, context: Any) -> None:
        result = serve_rounds(config_from_context(context, cfg), grid, context)
        if results is not None:
            results.append(result)

    return app


def federated_simulation(cfg: Config) -> FederatedResult:
    """All clients on this machine: Flower's simulation engine (Ray) or the in-process grid."""
    from tunesmith.recipes.common import quiet_libraries

    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # no network calls from Flower
    quiet_libraries()
    _check(cfg)
    results: list[FederatedResult] = []
    server_app, client_app = build_server_app(cfg, results), build_client_app(cfg)
    n = client_count(cfg)
    if cfg.federated.simulation_backend == "ray":
        from flwr.simulation import run_simulation

        threads = cfg.model.num_threads or 1
        run_simulation(server_app, client_app, num_supernodes=n, backend_config={
            "client_resources": {"num_cpus": threads, "num_gpus": 0.0},
            "init_args": {"num_cpus": threads, "include_dashboard": False, "log_to_driver": True},
        })
    else:
        from flwr.app import Context, RecordDict

        from tunesmith.train.federated.grid import InProcessGrid

        grid = InProcessGrid(client_app, n)
        server_app(grid, Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}))
    if not results:
        from tunesmith.core.errors import TunesmithError

        raise TunesmithError("the federated simulation ended without a result; see the Flower log above")
    return results[0]


def _check(cfg: Config) -> None:
    from tunesmith.core.errors import ConfigError, Problem

    problems = []
    if cfg.adapter.method == "full":
        problems.append(Problem("adapter.method", None, "got 'full'; federated training exchanges adapter tensors",
                                "use lora, dora, ia3 or prefix"))
    if cfg.federated.server_eval and cfg.data.val_fraction <= 0:
        problems.append(Problem("data.val_fraction", None, "got 0, but federated.server_eval needs validation data",
                                "set data.val_fraction (e.g. 0.1) or federated.server_eval=false"))
    if problems:
        raise ConfigError(problems)
