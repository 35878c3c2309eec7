"""The Flower ClientApp of `tunesmith federated`: each node prepares its own data once, then trains or scores
the adapter when the server asks.

A node's data: `federated.clients[partition-id]` (one file per client), a `data-file` given in the node's config
(`flower-supernode --node-config "data-file='mine.jsonl'"`), or part `partition-id` of a seeded split of
`data.train_file` (`federated.partition`: iid or non_iid). Each file or part is split into train / validation
with the run's data settings, like `tunesmith train` does. The base model and the encoded data are cached per
process, so a Ray actor or a SuperNode loads them once for all rounds.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunesmith.config import Config, config_hash, load_config
from tunesmith.recipes.common import encode_split, prompt_style, setup_runtime
from tunesmith.train.federated.privacy import local_dp_epsilon_argument
from tunesmith.train.federated.server import CLIENT_ID_KEY, WEIGHT_KEY

_MODELS: dict[str, tuple[Any, Any, Any, Any]] = {}
_TRAINERS: dict[tuple[str, int, str | None], Any] = {}


def config_from_context(context: Any, cfg: Config | None) -> Config:
    """The run config: given directly (simulation), or read from the run config's `config-file` and
    `overrides` (deployment: `flwr run . --run-config "config-file='run.yaml'"`)."""
    if cfg is not None:
        return cfg
    run_config = dict(context.run_config)
    path = run_config.get("config-file") or None
    overrides = str(run_config.get("overrides", "")).split()
    return load_config(path, overrides)


def client_count(cfg: Config) -> int:
    return len(cfg.federated.clients) if cfg.federated.clients else cfg.federated.num_clients


def client_splits(cfg: Config, client_id: int, data_file: str | None) -> tuple[Any, Any, Any]:
    """(train records, validation records, prompt style) of one client."""
    from tunesmith.data.load import load_splits

    fed = cfg.federated
    if data_file or fed.clients:
        files = [data_file] if data_file else list(fed.clients or [])
        own = data_file or files[client_id]
        per_file = [load_splits(dataclasses.replace(cfg.data, train_file=f), cfg.run.seed)[0] for f in files]
        splits = per_file[files.index(own)]
        union = [r for s in per_file for r in s.train]  # one label list for all clients: the same prompts
        return splits.train, splits.val, prompt_style(cfg.encode, union)
    splits, _ = load_splits(cfg.data, cfg.run.seed)
    train_part, val_part = partition_records(cfg, splits.train, splits.val, client_id)
    return train_part, val_part, prompt_style(cfg.encode, splits.train)


def partition_records(cfg: Config, train: list, val: list, client_id: int) -> tuple[list, list]:
    """Part `client_id` of the training split (and of the validation split), per `federated.partition`."""
    from tunesmith.train.federated.partition import partition_indices

    fed, n = cfg.federated, client_count(cfg)

    def part(records: list, seed: int) -> list:
        if not records:
            return []
        labels = [getattr(r, "label", None) for r in records]
        if len(records) < n:
            return records[client_id::n]
        indices = partition_indices(labels, n, fed.partition, fed.dirichlet_alpha, seed)[client_id]
        return [records[i] for i in indices]

    return part(train, cfg.run.seed), part(val, cfg.run.seed + 1)


def _base_model(cfg: Config) -> tuple[Any, Any, Any, Any]:
    """(peft model, tokenizer, device, autocast dtype), built once per process and config."""
    key = config_hash(cfg)
    if key not in _MODELS:
        from tunesmith.models.adapters import apply_adapter, place_for_training
        from tunesmith.recipes.finetune import load_base_model
        from tunesmith.train.loop import seed_everything

        device, autocast_dtype = setup_runtime(cfg)
        model, tokenizer = load_base_model(cfg, device)
        seed_everything(cfg.run.seed)
        model = place_for_training(apply_adapter(model, cfg.adapter), cfg.adapter.method, device, autocast_dtype)
        _MODELS[key] = (model, tokenizer, device, autocast_dtype)
    return _MODELS[key]


def local_trainer(cfg: Config, client_id: int, data_file: str | None, work_root: Path) -> Any:
    """This process's `LocalTrainer` for one client (cached: data is loaded and encoded once)."""
    key = (config_hash(cfg), client_id, data_file)
    if key not in _TRAINERS:
        from tunesmith.recipes.common import console
        from tunesmith.recipes.finetune import training_items
        from tunesmith.train.federated.client import ClientData, LocalTrainer

        model, tokenizer, device, autocast_dtype = _base_model(cfg)
        train_records, val_records, style = client_splits(cfg, client_id, data_file)
        train_examples, _ = encode_split(train_records, tokenizer, style, cfg.encode)
        val_examples, _ = encode_split(val_records, tokenizer, style, cfg.encode)
        train_items, val_items, collate = training_items(cfg, train_examples, val_examples,
                                                         tokenizer.pad_token_id, console())
        data = ClientData(train_items, val_items, collate, num_records=len(train_records))
        _TRAINERS[key] = LocalTrainer(model, data, cfg, client_id, work_root / f"client-{client_id}", device,
                                      autocast_dtype)
    trainer = _TRAINERS[key]
    trainer.work_dir = work_root / f"client-{client_id}"
    return trainer


def _node_client(context: Any) -> tuple[int, str | None]:
    node = dict(context.node_config)
    data_file = node.get("data-file") or None
    return int(node.get("partition-id", 0)), str(data_file) if data_file else None


def client_mods(cfg: Config) -> list[Callable[..., Any]]:
    """Flower's client-side DP mods for this config: clipping only (central) or clipping + noise (local)."""
    dp = cfg.federated.dp
    if not dp.enabled:
        return []
    if dp.mode == "central":
        from flwr.clientapp.mod import fixedclipping_mod

        return [fixedclipping_mod]
    from flwr.clientapp.mod import LocalDpMod

    epsilon = local_dp_epsilon_argument(dp.noise_multiplier, dp.delta)
    return [LocalDpMod(dp.clipping_norm, dp.clipping_norm, epsilon, dp.delta)]


def _with_mods(mods: list[Callable[..., Any]], handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Chain Flower mods around a handler, first mod outermost (as `ClientApp(mods=...)` does)."""
    for mod in reversed(mods):
        handler = functools.partial(lambda m, c, _mod, _next: _mod(m, c, _next), _mod=mod, _next=handler)
    return handler


def build_client_app(cfg: Config | None = None) -> Any:
    """The ClientApp: `train` runs the local loop and replies with the adapter tensors only; `evaluate` replies
    with the global adapter's validation loss on this client's data. `cfg=None` reads it from the run config."""
    from flwr.app import Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    from tunesmith.train.federated.adapter_arrays import from_array_record, to_array_record
    from tunesmith.train.federated.secure_aggregation import is_legacy_message

    app = ClientApp()

    def trainer_for(msg: Any, context: Any) -> tuple[Config, Any, int]:
        run_cfg = config_from_context(context, cfg)
        client_id, data_file = _node_client(context)
        work_root = Path(str(msg.content["config"].get("run-dir", run_cfg.run.output_dir))) / "clients"
        return run_cfg, local_trainer(run_cfg, client_id, data_file, work_root), client_id

    def fit(msg: Any, context: Any) -> Any:
        _, trainer, client_id = trainer_for(msg, context)
        conf = msg.content["config"]
        state, metrics = trainer.fit(from_array_record(msg.content["arrays"]), int(conf["server-round"]),
                                     float(conf.get("proximal-mu", 0.0)))
        weight = 1 if conf.get("dp-enabled") else trainer.data.num_records  # DP noise assumes equal weights
        reply = MetricRecord({**metrics, WEIGHT_KEY: weight, CLIENT_ID_KEY: client_id})
        return Message(RecordDict({"arrays": to_array_record(state), "metrics": reply}), reply_to=msg)

    legacy_app = _secure_aggregation_app(cfg)

    @app.train()
    def train(msg: Any, context: Any) -> Any:
        if is_legacy_message(msg):  # SecAgg+ runs on Flower's legacy workflow messages
            return legacy_app(msg, context)
        return _with_mods(client_mods(config_from_context(context, cfg)), fit)(msg, context)

    @app.evaluate()
    def evaluate(msg: Any, context: Any) -> Any:
        if is_legacy_message(msg):
            return legacy_app(msg, context)
        _, trainer, client_id = trainer_for(msg, context)
        loss, targets = trainer.evaluate(from_array_record(msg.content["arrays"]))
        reply = MetricRecord({"val_loss": loss if loss is not None else 0.0, WEIGHT_KEY: targets,
                              CLIENT_ID_KEY: client_id})
        return Message(RecordDict({"metrics": reply}), reply_to=msg)

    return app


def _secure_aggregation_app(cfg: Config | None) -> Any:
    """The legacy-API ClientApp behind Flower's `secaggplus_mod` (used when the server runs SecAgg+)."""
    from flwr.client.mod import secaggplus_mod
    from flwr.clientapp import ClientApp

    from tunesmith.train.federated.secure_aggregation import AdapterNumPyClient

    def client_fn(context: Any) -> Any:
        run_cfg = config_from_context(context, cfg)
        client_id, data_file = _node_client(context)

        def trainer_for(run_dir: str | None) -> Any:
            root = Path(str(run_dir or run_cfg.run.output_dir)) / "clients"
            return local_trainer(run_cfg, client_id, data_file, root)

        return AdapterNumPyClient(trainer_for, client_id).to_client()

    return ClientApp(client_fn=client_fn, mods=[secaggplus_mod])
