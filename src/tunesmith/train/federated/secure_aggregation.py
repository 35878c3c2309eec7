"""Secure aggregation (SecAgg+, Bell et al. 2020) of the adapter updates with Flower's `SecAggPlusWorkflow`.

With `federated.secure_aggregation: true` the server only ever learns the sum of the clients' adapter tensors:
each client masks its (quantised) tensors with pairwise masks that cancel in the sum, and secret-shares its mask
seeds so the sum can still be unmasked when some clients drop out. Flower 1.42 provides SecAgg+ through its
legacy workflow API only, so this path uses `DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(...))` with the
legacy `flwr.server.strategy.FedAvg` / `FedProx`, and the clients answer as a `NumPyClient` behind Flower's
`secaggplus_mod`. Clients are weighted equally (weight 1, `max_weight` 1): the masked vectors are quantised
within +-`clipping_range` in 2^22 steps (about 4e-6 per entry), and a weight would scale that error.

Per-round numbers come from the legacy strategy's metric-aggregation hooks, like the message-API path, but the
metrics lines are written when the workflow ends and there is no round-0 evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flwr.client import NumPyClient

from tunesmith.train.federated.server import CLIENT_ID_KEY, FederatedHistory

if TYPE_CHECKING:
    from tunesmith.config.federated_schema import FederatedConfig

CLIPPING_RANGE = 8.0
"""Adapter entries are clipped to +-this before quantisation (LoRA weights are far smaller)."""


class AdapterNumPyClient(NumPyClient):
    """A `LocalTrainer` behind Flower's legacy client interface (lists of numpy arrays in adapter order).

    `trainer_for(run_dir)` returns the client's trainer; the run folder arrives with each round's config.
    """

    def __init__(self, trainer_for: Callable[[str | None], Any], client_id: int) -> None:
        self.trainer_for, self.client_id = trainer_for, client_id

    def _state(self, trainer: Any, parameters: list[Any]) -> dict[str, Any]:
        import torch

        from tunesmith.train.federated.adapter_arrays import adapter_state

        names = list(adapter_state(trainer.model))
        return {name: torch.from_numpy(array.copy()) for name, array in zip(names, parameters, strict=True)}

    def fit(self, parameters: list[Any], config: dict[str, Any]) -> tuple[list[Any], int, dict[str, Any]]:
        trainer = self.trainer_for(config.get("run-dir"))
        start = self._state(trainer, parameters)
        state, metrics = trainer.fit(start, int(config["server-round"]), float(config.get("proximal-mu", 0.0)))
        arrays = [state[name].float().numpy() for name in start]
        return arrays, 1, {**metrics, CLIENT_ID_KEY: self.client_id}

    def evaluate(self, parameters: list[Any], config: dict[str, Any]) -> tuple[float, int, dict[str, Any]]:
        trainer = self.trainer_for(config.get("run-dir"))
        loss, targets = trainer.evaluate(self._state(trainer, parameters))
        value = loss if loss is not None else 0.0
        return value, targets, {"val_loss": value, CLIENT_ID_KEY: self.client_id}


def is_legacy_message(message: Any) -> bool:
    """A message of Flower's legacy workflows (fit/evaluate instructions or a SecAgg+ stage)."""
    return any(key.startswith(("fitins.", "evaluateins.", "secaggplus")) for key in message.content.config_records)


def _history_hook(history: FederatedHistory, kind: str, counter: list[int]) -> Callable[[list[Any]], dict]:
    """A legacy `*_metrics_aggregation_fn`: keep each client's numbers, return the weighted mean."""

    def aggregate(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        server_round = counter[0]
        entry = history.rounds.setdefault(server_round, {"round": server_round, "clients": {}})
        total = sum(n for n, _ in results) or 1
        mean: dict[str, float] = {}
        for n, metrics in results:
            values = dict(metrics)
            client = str(int(values.pop(CLIENT_ID_KEY, -1)))
            entry["clients"].setdefault(client, {}).update(values)
            for key, value in values.items():
                mean[key] = mean.get(key, 0.0) + float(value) * n / total
        entry[kind] = mean
        return mean

    return aggregate


def run_secagg_rounds(grid: Any, context: Any, fed: FederatedConfig, num_clients: int, initial: list[Any],
                      history: FederatedHistory, extra_config: dict[str, Any]) -> list[Any]:
    """`fed.rounds` rounds of FedAvg/FedProx with SecAgg+; returns the final adapter arrays (adapter order)."""
    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerConfig
    from flwr.server.compat import LegacyContext
    from flwr.server.strategy import FedAvg, FedProx
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
    from flwr.server.workflow.constant import MAIN_PARAMS_RECORD

    counter = [0]

    def round_config(server_round: int) -> dict[str, Any]:
        counter[0] = server_round
        mu = fed.proximal_mu if fed.algorithm == "fedprox" else 0.0
        return {"server-round": server_round, "proximal-mu": mu, **extra_config}

    sampled = max(int(num_clients * fed.fraction_fit), fed.min_fit_clients)
    kwargs: dict[str, Any] = dict(
        fraction_fit=fed.fraction_fit, min_fit_clients=fed.min_fit_clients, min_available_clients=num_clients,
        fraction_evaluate=1.0 if fed.server_eval else 0.0, min_evaluate_clients=num_clients if fed.server_eval else 0,
        initial_parameters=ndarrays_to_parameters(initial), on_fit_config_fn=round_config,
        on_evaluate_config_fn=round_config,
        fit_metrics_aggregation_fn=_history_hook(history, "train", counter),
        evaluate_metrics_aggregation_fn=_history_hook(history, "evaluate", counter),
    )
    strategy = FedProx(proximal_mu=fed.proximal_mu, **kwargs) if fed.algorithm == "fedprox" else FedAvg(**kwargs)
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=fed.rounds), strategy=strategy)
    secagg = SecAggPlusWorkflow(num_shares=sampled, reconstruction_threshold=max(2, math.ceil(sampled * 2 / 3)),
                                max_weight=1.0, clipping_range=CLIPPING_RANGE)
    DefaultWorkflow(fit_workflow=secagg)(grid, legacy)
    return legacy.state.array_records[MAIN_PARAMS_RECORD].to_numpy_ndarrays()
