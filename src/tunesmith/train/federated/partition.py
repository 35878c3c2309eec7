"""Seeded splits of one training split among federated clients: IID, or non-IID by a Dirichlet over labels.

    parts = partition_indices(labels, num_clients=3, scheme="non_iid", alpha=0.5, seed=0)  # list of index lists

Every index lands in exactly one part (disjoint, covering); the result depends only on (labels, scheme, alpha,
seed), so every client process computes the same split and takes its own part by partition id.
"""

from __future__ import annotations

from collections.abc import Sequence

from tunesmith.core.errors import ConfigError, Problem

_MAX_DIRICHLET_TRIES = 100


def partition_iid(num_items: int, num_clients: int, seed: int) -> list[list[int]]:
    """A seeded shuffle cut into `num_clients` parts whose sizes differ by at most one."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(num_items)
    return [sorted(int(i) for i in part) for part in np.array_split(order, num_clients)]


def partition_dirichlet(labels: Sequence[str], num_clients: int, alpha: float, seed: int) -> list[list[int]]:
    """Label-skewed parts (Hsu et al. 2019): each label's records are shared among the clients in proportions
    drawn from Dirichlet(alpha, ..., alpha). Draws are repeated (same seeded stream) until every client has a
    record, so no client is left without data."""
    import numpy as np

    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    for _ in range(_MAX_DIRICHLET_TRIES):
        parts: list[list[int]] = [[] for _ in range(num_clients)]
        for label in sorted(by_label):
            members = rng.permutation(by_label[label])
            shares = rng.dirichlet([alpha] * num_clients)
            cuts = (np.cumsum(shares)[:-1] * len(members)).round().astype(int)
            for client, chunk in enumerate(np.split(members, cuts)):
                parts[client].extend(int(i) for i in chunk)
        if all(parts):
            return [sorted(p) for p in parts]
    raise ConfigError([Problem(
        "federated.dirichlet_alpha", None,
        f"{_MAX_DIRICHLET_TRIES} Dirichlet draws with alpha={alpha} each left a client without records",
        "raise federated.dirichlet_alpha, lower federated.num_clients, or use more data",
    )])


def partition_indices(
    labels: Sequence[str | None], num_clients: int, scheme: str, alpha: float, seed: int
) -> list[list[int]]:
    """`num_clients` disjoint index lists covering `range(len(labels))`; `scheme` is `iid` or `non_iid`."""
    if num_clients > len(labels):
        raise ConfigError([Problem("federated.num_clients", None,
                                   f"got {num_clients} clients for {len(labels)} training records",
                                   "use fewer clients or more data")])
    if scheme == "iid":
        return partition_iid(len(labels), num_clients, seed)
    if any(label is None for label in labels):
        raise ConfigError([Problem("federated.partition", None, "non_iid splits by label, but the records have none",
                                   "use federated.partition=iid, or give one data file per client")])
    return partition_dirichlet([str(label) for label in labels], num_clients, alpha, seed)
