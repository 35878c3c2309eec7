"""A client's local round on the tiny model: what it sends, what it leaves alone, and FedProx's pull."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from fed_fixtures import tiny_federated_config


def _peft_model(tiny_model):
    from tunesmith.config.schema import AdapterConfig
    from tunesmith.models.adapters import apply_adapter

    return apply_adapter(tiny_model, AdapterConfig(r=4, alpha=8))


def test_a_training_reply_carries_only_the_adapter_tensors(tmp_path: Path, tiny_model_dir: Path) -> None:
    from flwr.app import ConfigRecord
    from flwr.serverapp.strategy import FedAvg

    from tunesmith.recipes.federated_client import _base_model, build_client_app
    from tunesmith.train.federated.adapter_arrays import adapter_state, to_array_record
    from tunesmith.train.federated.grid import InProcessGrid

    cfg = tiny_federated_config(tmp_path, tiny_model_dir)
    grid = InProcessGrid(build_client_app(cfg), num_nodes=2)
    model = _base_model(cfg)[0]
    global_state = adapter_state(model)
    messages = FedAvg(min_available_nodes=2).configure_train(
        1, to_array_record(global_state), ConfigRecord({"run-dir": str(tmp_path / "run")}), grid)
    replies = list(grid.send_and_receive(messages))
    assert len(replies) == 2 and not any(r.has_error() for r in replies)
    trainable = {n: p.shape for n, p in model.named_parameters() if p.requires_grad}
    for reply in replies:
        arrays = reply.content["arrays"]
        assert list(arrays.keys()) == list(global_state)  # same names, same order as the global adapter
        assert all("lora_" in name for name in arrays)
        assert sorted(tuple(a.shape) for a in arrays.values()) == sorted(tuple(s) for s in trainable.values())
        assert len(arrays) == len(trainable)
    full_bytes = sum(p.numel() * 4 for p in model.parameters())
    assert grid.bytes_received < 0.25 * 2 * full_bytes  # two replies, each far smaller than the model
    assert (tmp_path / "run" / "clients" / "client-0" / "round-001" / "metrics.jsonl").is_file()


def test_local_round_moves_the_adapter_and_leaves_base_weights_byte_identical(tmp_path: Path,
                                                                             tiny_model_dir: Path) -> None:
    import torch

    from tunesmith.recipes.federated_client import local_trainer
    from tunesmith.train.federated.adapter_arrays import adapter_state

    cfg = tiny_federated_config(tmp_path, tiny_model_dir)
    trainer = local_trainer(cfg, 1, None, tmp_path / "clients")
    frozen = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if not p.requires_grad}
    start = adapter_state(trainer.model)
    new_state, metrics = trainer.fit(start, server_round=1, proximal_mu=0.0)
    assert metrics["local_steps"] == 3 and metrics["num_records"] > 0
    assert any(not torch.equal(new_state[k], start[k]) for k in start)
    for name, p in trainer.model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, frozen[name]), name
    loss, targets = trainer.evaluate(start)  # evaluation loads the given adapter first
    assert targets > 0 and loss is not None and math.isfinite(loss)


def _batch(tiny_tokenizer):
    import torch

    ids = torch.tensor([tiny_tokenizer.encode("play some jazz music please")])
    labels = ids.clone()
    labels[:, :2] = -100
    return {"input_ids": ids, "labels": labels, "position_ids": torch.arange(ids.shape[1])[None]}


def test_fedprox_term_is_zero_at_the_global_weights_and_pulls_towards_them(tiny_model, tiny_tokenizer) -> None:
    import torch

    from tunesmith.train.federated.proximal import FederatedClientStrategy
    from tunesmith.train.strategy import PlainStrategy

    model = _peft_model(tiny_model)
    batch = _batch(tiny_tokenizer)
    strategy = FederatedClientStrategy(None, proximal_mu=0.5)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    strategy.setup(model, optimizer, None)  # type: ignore[arg-type]
    plain_loss, n = PlainStrategy().compute_loss(model, batch)
    prox_loss, n2 = strategy.compute_loss(model, batch)
    assert n == n2 and torch.equal(prox_loss, plain_loss)  # zero at the global weights

    params = [p for p in model.parameters() if p.requires_grad]
    shifts = [torch.randn_like(p) * 0.01 for p in params]
    with torch.no_grad():
        for p, d in zip(params, shifts, strict=True):
            p.add_(d)
    moved_plain, _ = PlainStrategy().compute_loss(model, batch)
    moved_prox, _ = strategy.compute_loss(model, batch)
    expected_term = 0.5 / 2 * sum(float((d**2).sum()) for d in shifts)
    assert float((moved_prox - moved_plain).detach()) / n == pytest.approx(expected_term, rel=1e-4)

    # gradient of the term (per target token): mu * (w - w_global), i.e. pointing away from the anchor
    term = strategy.proximal_term()
    grads = torch.autograd.grad(term, params)
    for g, d in zip(grads, shifts, strict=True):
        torch.testing.assert_close(g, 0.5 * d, rtol=1e-4, atol=1e-7)


def test_fedprox_keeps_local_training_closer_to_the_global_adapter(tmp_path: Path, tiny_model_dir: Path) -> None:
    import torch

    from tunesmith.recipes.federated_client import local_trainer
    from tunesmith.train.federated.adapter_arrays import adapter_state

    cfg = tiny_federated_config(tmp_path, tiny_model_dir, "--federated.local_steps=6")
    trainer = local_trainer(cfg, 0, None, tmp_path / "clients")
    start = adapter_state(trainer.model)

    def drift(mu: float) -> float:
        new, _ = trainer.fit(start, server_round=1, proximal_mu=mu)
        return float(sum(((new[k] - start[k]) ** 2).sum() for k in start))

    free, pulled = drift(0.0), drift(50.0)
    assert pulled < 0.8 * free
    assert free == pytest.approx(drift(0.0))  # same seed, same round: the same local run
    assert torch.isfinite(torch.tensor(pulled))


def test_secure_aggregation_returns_the_mean_of_the_clients_adapters(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Flower's SecAgg+ (masked, secret-shared, quantised updates) gives the plain mean to quantisation error."""
    import torch
    from safetensors.torch import load_file

    from tunesmith.recipes.federated import federated_simulation
    from tunesmith.recipes.federated_client import _base_model, local_trainer
    from tunesmith.train.federated.adapter_arrays import adapter_state

    cfg = tiny_federated_config(tmp_path, tiny_model_dir, "--federated.num_clients=3", "--federated.min_fit_clients=3",
                                "--federated.secure_aggregation=true", "--federated.server_eval=false")
    initial = adapter_state(_base_model(cfg)[0])
    result = federated_simulation(cfg)
    assert result.report["secure_aggregation"] is True
    updates = [local_trainer(cfg, k, None, tmp_path / "again").fit(initial, 1, 0.0)[0] for k in range(3)]
    saved = load_file(str(result.adapter_dir / "adapter_model.safetensors"))
    assert len(saved) == len(initial)
    for name, tensor in saved.items():
        key = next(k for k in initial if name.endswith(k.split("base_model.model.", 1)[-1]))
        mean = torch.stack([u[key] for u in updates]).mean(0)
        torch.testing.assert_close(tensor, mean, atol=5e-5, rtol=0)
        if "lora_B" in key:  # zero at the start: training moved it, and the aggregate kept the move
            assert not torch.equal(mean, initial[key])
