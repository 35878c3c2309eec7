"""The `federated:` section: federated fine-tuning of the adapter with Flower (`tunesmith federated sim cfg.yaml`).

Each client trains the adapter on its own data with the one training loop and sends back only the adapter
tensors; the server averages them with Flower's FedAvg or FedProx. The rest of the run config (model, adapter,
encode, train) applies to every client; `train.learning_rate`, `train.batch_size` and the schedule are the
clients' local settings, restarted each round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tunesmith.config.rules import need_into
from tunesmith.core.errors import Problem


@dataclass
class FederatedDPConfig:
    """Differential privacy of each client's update: clip its norm, add Gaussian noise, account per round."""

    enabled: bool = False
    """Clip every client's adapter update and add Gaussian noise; epsilon is accounted per round (opacus RDP)."""
    mode: Literal["central", "local"] = "central"
    """`central`: clients clip (Flower `fixedclipping_mod`), the server adds noise to the mean; `local`: every
    client adds its own noise before sending (Flower `LocalDpMod`), so the server never sees a clean update."""
    clipping_norm: float = 0.1
    """Largest L2 norm of one client's update (adapter tensors after minus before the round)."""
    noise_multiplier: float = 1.0
    """Noise standard deviation as a multiple of `clipping_norm` (central: of the sum, local: of each update)."""
    delta: float = 1e-5
    """Delta of the reported (epsilon, delta) guarantee; keep it below 1 / number of clients."""


@dataclass
class FederatedConfig:
    """Federated fine-tuning over adapters: clients, rounds, aggregation, privacy and the deployment address."""

    clients: list[str] | None = None
    """One data file per client; default: a seeded split of `data.train_file` into `num_clients` parts."""
    num_clients: int = 3
    """Number of clients when `clients` is not given (each gets a share of the training split)."""
    partition: Literal["iid", "non_iid"] = "iid"
    """How `data.train_file` is split among clients: `iid` (seeded shuffle) or `non_iid` (Dirichlet over labels)."""
    dirichlet_alpha: float = 0.5
    """Concentration of the non-IID split: small values give each client few labels, large ones approach IID."""
    rounds: int = 3
    """Federated rounds (train on every sampled client, then aggregate)."""
    local_steps: int | None = 10
    """Optimizer steps each client runs per round; null: `local_epochs` passes over its data instead."""
    local_epochs: float = 1.0
    """Passes over the client's data per round when `local_steps` is null."""
    algorithm: Literal["fedavg", "fedprox"] = "fedavg"
    """Server aggregation (Flower strategy): `fedavg` or `fedprox` (FedAvg plus a proximal term on the clients)."""
    proximal_mu: float = 0.01
    """FedProx: weight mu of the client loss term mu/2 * ||w - w_global||^2."""
    fraction_fit: float = 1.0
    """Share of the clients sampled to train each round."""
    min_fit_clients: int = 2
    """Fewest clients that train in a round (and must be connected before a round starts)."""
    server_eval: bool = True
    """Each round, every client also reports the global adapter's validation loss on its own validation split."""
    dp: FederatedDPConfig = field(default_factory=FederatedDPConfig)
    """Client-level differential privacy of the updates."""
    secure_aggregation: bool = False
    """Aggregate with Flower's SecAgg+ (masked, secret-shared updates: the server learns only their sum); needs 3 or
    more clients, uses Flower's legacy workflow API and equal client weights."""
    server_address: str = "127.0.0.1:9093"
    """Deployment: the SuperLink's host:port (its HTTP runtime API, which serves the SuperNodes and `flwr run`);
    `tunesmith federated deploy cfg.yaml` prints the commands that use it."""
    simulation_backend: Literal["ray", "inprocess"] = "ray"
    """`ray`: Flower's simulation engine (clients in a Ray actor); `inprocess`: the same ClientApp and ServerApp
    driven by an in-process message grid (no Ray start-up; for tests and small machines)."""


def federated_problems(cfg: FederatedConfig) -> list[Problem]:
    """Every bound or cross-field rule `cfg` breaks, each naming the field (`federated.<field>`)."""
    problems: list[Problem] = []
    need = need_into(problems, "federated")

    n = len(cfg.clients) if cfg.clients else cfg.num_clients
    need(cfg.clients is None or len(cfg.clients) >= 1, "clients", cfg.clients, "at least one data file or null")
    need(cfg.num_clients >= 1, "num_clients", cfg.num_clients, "a positive integer")
    need(cfg.dirichlet_alpha > 0, "dirichlet_alpha", cfg.dirichlet_alpha, "a positive number", "typical: 0.1 to 1")
    need(cfg.rounds >= 1, "rounds", cfg.rounds, "a positive integer")
    need(cfg.local_steps is None or cfg.local_steps >= 1, "local_steps", cfg.local_steps, "a positive integer or null")
    need(cfg.local_epochs > 0, "local_epochs", cfg.local_epochs, "a positive number")
    need(cfg.proximal_mu >= 0, "proximal_mu", cfg.proximal_mu, "0 or more")
    need(0 < cfg.fraction_fit <= 1, "fraction_fit", cfg.fraction_fit, "a share in (0, 1]")
    need(1 <= cfg.min_fit_clients <= n, "min_fit_clients", cfg.min_fit_clients,
         f"between 1 and the number of clients ({n})")
    dp = cfg.dp
    need(dp.clipping_norm > 0, "dp.clipping_norm", dp.clipping_norm, "a positive number")
    need(dp.noise_multiplier > 0 or not dp.enabled, "dp.noise_multiplier", dp.noise_multiplier,
         "a positive number when dp is enabled", "set federated.dp.enabled=false to train without noise")
    need(0 < dp.delta < 1, "dp.delta", dp.delta, "a probability in (0, 1)", "typical: 1e-5")
    need(not (cfg.secure_aggregation and dp.enabled), "secure_aggregation", cfg.secure_aggregation,
         "false when federated.dp.enabled (the two are not combined yet)", "choose one of them")
    need(not cfg.secure_aggregation or n >= 3, "secure_aggregation", cfg.secure_aggregation,
         f"3 or more clients for SecAgg+ (got {n})")
    host, sep, port = cfg.server_address.rpartition(":")
    need(bool(sep and host and port.isdigit()), "server_address", cfg.server_address, "host:port")
    return problems
