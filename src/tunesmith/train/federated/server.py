"""The server side: Flower's FedAvg / FedProx (message API, `flwr.serverapp.strategy`), wrapped for central DP
when asked, and a history of every round (per-client train and validation numbers, the global validation loss).

    strategy, history = build_strategy(cfg.federated, num_clients=3)
    result = run_rounds(strategy, history, grid, initial_arrays, cfg.federated, on_round=print)

Aggregation is Flower's own `aggregate_arrayrecords` inside its strategies (weighted by each client's training
records; equal weights under DP, which the noise calibration assumes). Validation: every client scores the
global adapter on its own validation split and reports its target-token count as the weight, so the aggregate is
the token-weighted loss over the union of the clients' validation splits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunesmith.train.federated.privacy import RoundAccountant

if TYPE_CHECKING:
    from tunesmith.config.federated_schema import FederatedConfig

CLIENT_ID_KEY = "client-id"
WEIGHT_KEY = "num-examples"  # Flower strategies' default `weighted_by_key`


def num_sampled_clients(fed: FederatedConfig, num_clients: int) -> int:
    """Clients Flower's FedAvg samples per round: max(int(n * fraction_fit), min_fit_clients)."""
    return max(int(num_clients * fed.fraction_fit), fed.min_fit_clients)


@dataclass
class FederatedHistory:
    """Per-round numbers, filled by the strategy's metric aggregation hooks (one entry per round)."""

    rounds: dict[int, dict[str, Any]] = field(default_factory=dict)
    accountant: RoundAccountant | None = None

    def _entry(self, server_round: int) -> dict[str, Any]:
        return self.rounds.setdefault(server_round, {"round": server_round, "clients": {}})

    def _split(self, records: list[Any], server_round: int, kind: str) -> list[Any]:
        """Record each client's numbers; return the records without the client id (for Flower's averaging)."""
        from flwr.app import MetricRecord, RecordDict

        cleaned = []
        for record in records:
            name, metrics = next(iter(record.metric_records.items()))
            values = dict(metrics)
            client = str(int(values.pop(CLIENT_ID_KEY, -1)))
            per_client = self._entry(server_round)["clients"].setdefault(client, {})
            per_client.update({f"{kind}_{k}" if k == WEIGHT_KEY else k: v for k, v in values.items()})
            cleaned.append(RecordDict({name: MetricRecord(values)}))
        return cleaned

    def aggregate_fn(self, kind: str, current_round: Callable[[], int]) -> Callable[[list[Any], str], Any]:
        """A `train_metrics_aggr_fn` / `evaluate_metrics_aggr_fn` for Flower's FedAvg that also keeps the
        per-client values; the aggregate itself is Flower's weighted average."""
        from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords

        def aggregate(records: list[Any], weight_key: str) -> Any:
            server_round = current_round()
            aggregated = aggregate_metricrecords(self._split(records, server_round, kind), weight_key)
            self._entry(server_round)[kind] = dict(aggregated)
            return aggregated

        return aggregate

    def global_val_loss(self, server_round: int) -> float | None:
        value = self.rounds.get(server_round, {}).get("evaluate", {}).get("val_loss")
        return float(value) if value is not None and math.isfinite(value) else None

    def to_rows(self) -> list[dict[str, Any]]:
        return [self.rounds[r] for r in sorted(self.rounds)]


class _RoundCounter:
    """Flower's metric aggregation hooks are not told the round; the strategy's configure calls are."""

    def __init__(self) -> None:
        self.value = 0


def build_strategy(fed: FederatedConfig, num_clients: int) -> tuple[Any, FederatedHistory]:
    """Flower's FedAvg or FedProx for this config (central DP: wrapped in client-side fixed clipping)."""
    from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg, FedProx

    history = FederatedHistory()
    counter = _RoundCounter()
    common: dict[str, Any] = dict(
        fraction_train=fed.fraction_fit, min_train_nodes=fed.min_fit_clients, min_available_nodes=num_clients,
        fraction_evaluate=1.0 if fed.server_eval else 0.0, min_evaluate_nodes=num_clients if fed.server_eval else 0,
        train_metrics_aggr_fn=history.aggregate_fn("train", lambda: counter.value),
        evaluate_metrics_aggr_fn=history.aggregate_fn("evaluate", lambda: counter.value),
    )
    base: Any = FedProx(proximal_mu=fed.proximal_mu, **common) if fed.algorithm == "fedprox" else FedAvg(**common)
    _count_rounds(base, counter)
    strategy = base
    if fed.dp.enabled:
        history.accountant = RoundAccountant(fed.dp.noise_multiplier, fed.dp.clipping_norm, fed.dp.delta,
                                             fed.dp.mode)
        if fed.dp.mode == "central":
            strategy = DifferentialPrivacyClientSideFixedClipping(
                base, fed.dp.noise_multiplier, fed.dp.clipping_norm, num_sampled_clients(fed, num_clients))
    return strategy, history


def _count_rounds(strategy: Any, counter: _RoundCounter) -> None:
    """Wrap the strategy's configure calls (instance attributes) so the hooks know which round they serve."""
    for name in ("configure_train", "configure_evaluate"):
        original = getattr(strategy, name)

        def configure(server_round: int, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            counter.value = server_round
            return _original(server_round, *args, **kwargs)

        setattr(strategy, name, configure)


def train_config(fed: FederatedConfig, num_clients: int, extra: dict[str, Any] | None = None) -> Any:
    """The ConfigRecord every training message carries (the clients read their settings from it)."""
    from flwr.app import ConfigRecord

    record: dict[str, Any] = {"num-clients": num_clients, "dp-enabled": fed.dp.enabled, "dp-mode": fed.dp.mode,
                              **(extra or {})}
    if fed.algorithm == "fedavg":
        record["proximal-mu"] = 0.0  # FedProx's configure_train sets its own mu
    return ConfigRecord(record)


def run_rounds(strategy: Any, history: FederatedHistory, grid: Any, initial_arrays: Any, fed: FederatedConfig,
               num_clients: int, on_round: Callable[[int, dict[str, Any]], None] | None = None,
               extra_config: dict[str, Any] | None = None) -> Any:
    """Round 0 (the initial adapter scored by every client), then `fed.rounds` rounds of Flower's `start`."""
    from flwr.app import ConfigRecord, MetricRecord

    if fed.server_eval:  # the starting point, on the same validation data as every later round
        replies = grid.send_and_receive(
            strategy.configure_evaluate(0, initial_arrays, ConfigRecord(dict(extra_config or {})), grid))
        strategy.aggregate_evaluate(0, replies)
    if on_round is not None:
        on_round(0, history.rounds.get(0, {"round": 0, "clients": {}}))

    def after_round(server_round: int, arrays: Any) -> Any:
        if server_round == 0:
            return None
        entry = history.rounds.setdefault(server_round, {"round": server_round, "clients": {}})
        if history.accountant is not None:
            history.accountant.step()
            entry["epsilon"] = history.accountant.epsilon()
        if on_round is not None:
            on_round(server_round, entry)
        loss = history.global_val_loss(server_round)
        return MetricRecord({"val_loss": loss}) if loss is not None else None

    return strategy.start(grid=grid, initial_arrays=initial_arrays, num_rounds=fed.rounds,
                          train_config=train_config(fed, num_clients, extra_config),
                          evaluate_config=ConfigRecord(dict(extra_config or {})),
                          evaluate_fn=after_round)
