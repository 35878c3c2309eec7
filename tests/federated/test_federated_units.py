"""Federated learning over adapters: partitions, what goes over the wire, Flower's aggregation, FedProx, DP."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from tunesmith.config import load_config
from tunesmith.core.errors import ConfigError
from tunesmith.train.federated.partition import partition_indices
from tunesmith.train.federated.privacy import RoundAccountant, local_dp_epsilon_argument

LABELS = [f"label{i % 4}" for i in range(200)]


# ---------------------------------------------------------------- partitions


@pytest.mark.parametrize("scheme", ["iid", "non_iid"])
def test_partitions_are_seeded_disjoint_and_cover(scheme: str) -> None:
    parts = partition_indices(LABELS, 3, scheme, alpha=0.5, seed=7)
    flat = [i for p in parts for i in p]
    assert sorted(flat) == list(range(len(LABELS)))  # covering, and no index twice (disjoint)
    assert all(parts)
    assert parts == partition_indices(LABELS, 3, scheme, alpha=0.5, seed=7)
    assert parts != partition_indices(LABELS, 3, scheme, alpha=0.5, seed=8)


def test_iid_parts_are_balanced_and_non_iid_parts_are_label_skewed() -> None:
    iid = partition_indices(LABELS, 4, "iid", alpha=0.5, seed=0)
    assert max(map(len, iid)) - min(map(len, iid)) <= 1

    def skew(parts: list[list[int]]) -> float:  # mean share of a client's most common label
        return sum(Counter(LABELS[i] for i in p).most_common(1)[0][1] / len(p) for p in parts) / len(parts)

    non_iid = partition_indices(LABELS, 4, "non_iid", alpha=0.1, seed=0)
    assert skew(iid) < 0.45  # 4 balanced labels: about 0.25-0.35
    assert skew(non_iid) > 0.55 and skew(non_iid) > skew(iid) + 0.2


def test_non_iid_needs_labels_and_enough_records() -> None:
    with pytest.raises(ConfigError, match="non_iid splits by label"):
        partition_indices([None, None, None], 2, "non_iid", alpha=0.5, seed=0)
    with pytest.raises(ConfigError, match="federated.num_clients"):
        partition_indices(["a", "b"], 3, "iid", alpha=0.5, seed=0)


def test_config_block_validates_every_field_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["--federated.rounds=0", "--federated.fraction_fit=1.5", "--federated.dp.delta=2",
                           "--federated.server_address=nowhere", "--federated.partition=random"])
    text = str(err.value)
    for name in ("federated.rounds", "federated.fraction_fit", "federated.dp.delta", "federated.server_address",
                 "federated.partition"):
        assert name in text
    cfg = load_config(None, ["--federated.dp.enabled=true", "--federated.algorithm=fedprox"])
    assert cfg.federated.dp.enabled and cfg.federated.algorithm == "fedprox"


# ---------------------------------------------------------------- DP accounting


def _rdp_epsilon_closed_form(sigma: float, rounds: int, delta: float) -> float:
    """Gaussian mechanism composed `rounds` times: RDP(alpha) = rounds * alpha / (2 sigma^2), converted to
    (eps, delta) with the conversion opacus uses (Balle et al. 2020), minimised over opacus' orders."""
    orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    best = math.inf
    for a in orders:
        rdp = rounds * a / (2 * sigma**2)
        eps = rdp + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
        best = min(best, eps)
    return best


def _exact_gaussian_epsilon(sigma: float, rounds: int, delta: float) -> float:
    """The tight epsilon of `rounds` Gaussian mechanisms (mu-GDP with mu = sqrt(rounds) / sigma), by bisection."""
    from statistics import NormalDist

    phi, mu = NormalDist().cdf, math.sqrt(rounds) / sigma

    def delta_of(eps: float) -> float:
        return phi(-eps / mu + mu / 2) - math.exp(eps) * phi(-eps / mu - mu / 2)

    lo, hi = 0.0, 100.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if delta_of(mid) > delta else (lo, mid)
    return hi


@pytest.mark.parametrize("sigma,rounds", [(1.0, 3), (2.0, 10), (0.8, 50)])
def test_round_accountant_matches_the_gaussian_mechanism(sigma: float, rounds: int) -> None:
    acc = RoundAccountant(noise_multiplier=sigma, clipping_norm=0.1, delta=1e-5, mode="central")
    assert acc.epsilon() == 0.0
    for _ in range(rounds):
        acc.step()
    eps = acc.epsilon()
    assert eps == pytest.approx(_rdp_epsilon_closed_form(sigma, rounds, 1e-5), rel=1e-6)
    exact = _exact_gaussian_epsilon(sigma, rounds, 1e-5)
    assert exact <= eps <= exact * 1.35  # RDP is an upper bound, and a close one
    report = acc.report()
    assert {"epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "accountant", "max_grad_norm",
            "target_epsilon"} <= set(report) and report["steps"] == rounds


def test_local_dp_accounts_the_doubled_sensitivity() -> None:
    central = RoundAccountant(2.0, 0.1, 1e-5, "central")
    local = RoundAccountant(2.0, 0.1, 1e-5, "local")
    for acc in (central, local):
        acc.step()
        acc.step()
    # replace-one adjacency: two clipped updates differ by up to 2C, so sigma=2 counts as sigma=1
    assert local.epsilon() == pytest.approx(_rdp_epsilon_closed_form(1.0, 2, 1e-5), rel=1e-6)
    assert local.epsilon() > central.epsilon()


def _reply(arrays: dict, weight: float, client: int):
    """A client's train reply as Flower builds it (a reply to a sent message)."""
    import numpy as np
    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

    sent = Message(RecordDict({"config": ConfigRecord({})}), dst_node_id=client + 1, message_type="train")
    sent.metadata.__dict__["_message_id"] = f"m{client}"
    record = ArrayRecord({k: Array(np.asarray(v)) for k, v in arrays.items()})
    metrics = MetricRecord({"num-examples": weight, "client-id": client, "train_loss": float(client)})
    return Message(RecordDict({"arrays": record, "metrics": metrics}), reply_to=sent)


@pytest.fixture()
def grid():
    from flwr.clientapp import ClientApp

    from tunesmith.train.federated.grid import InProcessGrid

    return InProcessGrid(ClientApp(), num_nodes=3)  # sets Flower's task identity for building messages


def test_flower_fedavg_aggregate_is_the_weighted_mean(grid) -> None:
    import numpy as np
    from flwr.app import ArrayRecord, ConfigRecord

    from tunesmith.config.federated_schema import FederatedConfig
    from tunesmith.train.federated.server import build_strategy

    rng = np.random.default_rng(0)
    weights = [10.0, 30.0, 60.0]
    clients = [{"a.lora_A.weight": rng.normal(size=(4, 8)).astype(np.float32),
                "a.lora_B.weight": rng.normal(size=(8, 4)).astype(np.float32)} for _ in weights]
    strategy, history = build_strategy(FederatedConfig(), num_clients=3)
    strategy.configure_train(1, ArrayRecord(), ConfigRecord(), grid)  # Flower's round bookkeeping
    replies = [_reply(c, w, i) for i, (c, w) in enumerate(zip(clients, weights, strict=True))]
    arrays, metrics = strategy.aggregate_train(1, replies)
    total = sum(weights)
    for name in clients[0]:
        expected = sum(w * c[name] for c, w in zip(clients, weights, strict=True)) / total
        np.testing.assert_allclose(arrays[name].numpy(), expected, rtol=1e-6, atol=1e-6)
    assert metrics["train_loss"] == pytest.approx((0 * 10 + 1 * 30 + 2 * 60) / 100)
    assert history.rounds[1]["clients"]["2"]["train_loss"] == 2.0  # per-client values are kept


def test_central_dp_noise_has_the_accounted_scale(grid) -> None:
    import numpy as np
    from flwr.app import ArrayRecord, ConfigRecord

    from tunesmith.config.federated_schema import FederatedConfig, FederatedDPConfig
    from tunesmith.train.federated.server import build_strategy

    fed = FederatedConfig(num_clients=3, min_fit_clients=3,
                          dp=FederatedDPConfig(enabled=True, clipping_norm=0.5, noise_multiplier=1.2))
    strategy, history = build_strategy(fed, num_clients=3)
    clean, _ = build_strategy(FederatedConfig(num_clients=3, min_fit_clients=3), num_clients=3)
    rng = np.random.default_rng(1)
    clients = [{"w": rng.normal(size=(200, 100)).astype(np.float32) * 1e-3} for _ in range(3)]
    for s in (strategy, clean):
        s.configure_train(1, ArrayRecord(), ConfigRecord(), grid)
    np.random.seed(0)
    noisy, _ = strategy.aggregate_train(1, [_reply(c, 1.0, i) for i, c in enumerate(clients)])
    mean, _ = clean.aggregate_train(1, [_reply(c, 1.0, i) for i, c in enumerate(clients)])
    noise = noisy["w"].numpy() - mean["w"].numpy()
    # Flower adds N(0, (sigma * C / n)^2) to the mean: sigma * C on the sum, what the accountant assumes
    assert noise.std() == pytest.approx(1.2 * 0.5 / 3, rel=0.03)
    assert history.accountant is not None and history.accountant.noise_multiplier == 1.2


def test_local_dp_mod_clips_and_adds_the_calibrated_noise(grid) -> None:
    import numpy as np
    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

    from tunesmith.recipes.federated_client import _with_mods, client_mods

    cfg = load_config(None, ["--federated.dp.enabled=true", "--federated.dp.mode=local",
                             "--federated.dp.clipping_norm=0.5", "--federated.dp.noise_multiplier=0.8"])
    start = np.zeros((300, 100), dtype=np.float32)
    update = np.full_like(start, 1.0)  # norm 173: clipped to 0.5

    def handler(msg, context):
        out = RecordDict({"arrays": ArrayRecord({"w": Array(start + update)}),
                          "metrics": MetricRecord({"num-examples": 1})})
        return Message(out, reply_to=msg)

    sent = Message(RecordDict({"arrays": ArrayRecord({"w": Array(start)}), "config": ConfigRecord({})}),
                   dst_node_id=1, message_type="train")
    sent.metadata.__dict__["_message_id"] = "m"
    np.random.seed(0)
    reply = _with_mods(client_mods(cfg), handler)(sent, grid.contexts[1])
    sent_back = reply.content["arrays"]["w"].numpy()
    clipped = update * 0.5 / np.linalg.norm(update)
    noise = sent_back - clipped
    assert noise.std() == pytest.approx(0.8 * 0.5, rel=0.02)  # sigma * C per client
    assert abs(noise.mean()) < 0.01
    assert local_dp_epsilon_argument(0.8, 1e-5) == pytest.approx(math.sqrt(2 * math.log(1.25e5)) / 0.8)


def test_deploy_prints_one_supernode_per_client_file(tmp_path) -> None:
    from tunesmith.cli.federated_commands import deploy_commands

    cfg = load_config(None, ["--federated.clients=[a.jsonl, b.jsonl, c.jsonl]",
                             "--federated.server_address=10.0.0.5:9093"])
    text = deploy_commands(cfg, str(tmp_path / "fed.yaml"), ["--federated.rounds=5"])
    assert "flower-superlink --insecure --host 0.0.0.0 --port 9093" in text
    nodes = [line for line in text.splitlines() if line.startswith("flower-supernode")]
    assert len(nodes) == 3 and all("--superlink 10.0.0.5:9093" in n for n in nodes)
    assert "partition-id=2 num-partitions=3 data-file='c.jsonl'" in nodes[2]
    assert "overrides='--federated.rounds=5'" in text and "examples/federated_app" in text
