"""A run folder (or a base model and adapter folders) to an Engine, monitors and the alert log.

Adapters share the base weights in one peft model (one copy of the base in memory whatever their number); a
full fine-tune folder (a whole model) is loaded as its own model. The training texts for the leakage and drift
monitors come from the run's vetted data (`vet/kept.jsonl`) or else its config's training split.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tunesmith.config import Config, load_config
from tunesmith.config.schema import ModelConfig
from tunesmith.core.errors import TunesmithError
from tunesmith.serve.engine import BASE_NAME, Engine, ServedModel
from tunesmith.serve.monitors.base import AlertLog, Monitor, MonitorContext, build_monitors
from tunesmith.serve.settings import ServeSettings

log = logging.getLogger(__name__)


def parse_adapters(values: list[str] | None, run_dir: Path | None) -> list[tuple[str, Path]]:
    """`NAME=PATH` or `PATH` arguments (plus the run's own adapter first) as unique (name, folder) pairs."""
    pairs: list[tuple[str, Path]] = []
    if run_dir is not None and (run_dir / "adapter").is_dir():
        pairs.append((run_dir.name, run_dir / "adapter"))
    for value in values or []:
        name, sep, path = value.partition("=")
        folder = Path(path if sep else value)
        if not folder.is_dir():
            raise TunesmithError(f"adapter folder not found: {folder}")
        pairs.append((name if sep else _default_name(folder), folder))
    names = [n for n, _ in pairs]
    clash = sorted({n for n in names if names.count(n) > 1 or n == BASE_NAME})
    if clash:
        raise TunesmithError(
            f"adapter names must be unique and not {BASE_NAME!r}: {', '.join(clash)}; "
            "name them with --adapter NAME=PATH"
        )
    return pairs


def _default_name(folder: Path) -> str:
    folder = folder.resolve()
    return folder.parent.name if folder.name in ("adapter", "export") else folder.name


def build_engine(base_cfg: ModelConfig, adapters: list[tuple[str, Path]], device: str = "cpu") -> Engine:
    from tunesmith.models.export import load_tuned
    from tunesmith.models.load import check_adapter_folder, load_model_and_tokenizer

    peft_dirs = [(n, p) for n, p in adapters if (p / "adapter_config.json").is_file()]
    for _, folder in peft_dirs:  # all of them before any is read: peft would torch.load an adapter_model.bin
        check_adapter_folder(folder)
    base, tokenizer = load_model_and_tokenizer(base_cfg)
    whole = [(n, p) for n, p in adapters if (n, p) not in peft_dirs]
    shared = _with_adapters(base, peft_dirs).to(device).eval()
    models = [ServedModel(BASE_NAME, shared, tokenizer, None, _context(base))]
    for name, folder in peft_dirs:
        models.append(ServedModel(name, shared, _tokenizer_for(folder, tokenizer), name, _context(base)))
    for name, folder in whole:
        model = load_tuned(base_cfg, folder).to(device).eval()
        models.append(ServedModel(name, model, _tokenizer_for(folder, tokenizer), None, _context(model)))
    return Engine(models, device)


def _with_adapters(base: Any, peft_dirs: list[tuple[str, Path]]) -> Any:
    if not peft_dirs:
        return base
    from peft import PeftModel

    first_name, first_dir = peft_dirs[0]
    model = PeftModel.from_pretrained(base, str(first_dir), adapter_name=first_name)
    for name, folder in peft_dirs[1:]:
        model.load_adapter(str(folder), adapter_name=name)
    return model


def _tokenizer_for(folder: Path, fallback: Any) -> Any:
    """The tokenizer saved with an adapter (it may carry the chat template used in training), else the base one."""
    if not (folder / "tokenizer_config.json").is_file():
        return fallback
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = getattr(fallback, "chat_template", None)
    return tokenizer


def _context(model: Any) -> int:
    config = getattr(model, "config", None)
    return int(getattr(config, "max_position_embeddings", None) or 2048)


def training_texts(run_dir: Path, cfg: Config | None) -> tuple[list[str], list[str]]:
    """(every text field, the prompt side) of the run's training records; empty when none can be found."""
    from tunesmith.vet.view import full_text, prompt_text

    kept = run_dir / "vet" / "kept.jsonl"
    try:
        if kept.is_file():
            from tunesmith.data.load import load_records

            records = load_records(kept, "auto")[0] if kept.read_text(encoding="utf-8").strip() else []
        elif cfg is not None:
            from tunesmith.data.load import load_splits

            records = load_splits(cfg.data, cfg.run.seed)[0].train
        else:
            return [], []
    except TunesmithError as exc:
        log.warning("no training texts for the leakage and drift monitors: %s", exc)
        return [], []
    return [full_text(r) for r in records], [prompt_text(r) for r in records]


def make_monitors(
    settings: ServeSettings, texts: list[str], prompts: list[str], tokenizer: Any
) -> tuple[list[Monitor], AlertLog]:
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    ctx = MonitorContext(settings, texts, prompts, count)
    path = settings.monitor_dir / "alerts.jsonl" if settings.monitor_dir is not None else None
    return build_monitors(ctx), AlertLog(path)


def load_run(
    run_dir: Path, adapter_args: list[str] | None, settings: ServeSettings
) -> tuple[Engine, list[Monitor], AlertLog]:
    """Everything `tunesmith serve runs/<id>` needs, from the run's config.yaml and adapter folder."""
    from tunesmith.models.device import select_device

    config = run_dir / "config.yaml"
    if not config.is_file():
        raise TunesmithError(f"{run_dir} is not a run folder (no config.yaml); pass runs/<id>")
    cfg = load_config(config)
    adapters = parse_adapters(adapter_args, run_dir)
    engine = build_engine(cfg.model, adapters, str(select_device(cfg.model.device)))
    if settings.monitor_dir is None:
        settings.monitor_dir = run_dir / "monitor"
    texts, prompts = training_texts(run_dir, cfg)
    monitors, alerts = make_monitors(settings, texts, prompts, engine.get(BASE_NAME).tokenizer)
    return engine, monitors, alerts
