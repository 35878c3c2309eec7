"""The core recipe: data file -> trained adapter -> base-vs-tuned evaluation, all written to `runs/<id>/`.

    tunesmith train configs/demo.yaml --train.learning_rate=2e-4

Read top to bottom; each stage is one call into its package and writes its report into the run folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.config import Config, config_hash, config_to_dict
from tunesmith.recipes.audit import AuditStage, audit_enabled
from tunesmith.recipes.augment_data import AUGMENT_SUBDIR, AugmentStage
from tunesmith.recipes.common import (
    build_collate,
    console,
    encode_split,
    prompt_style,
    setup_runtime,
)
from tunesmith.recipes.eval_suite import check_eval_settings, evaluate_base, evaluate_tuned, write_evaluation
from tunesmith.recipes.vet_data import VET_SUBDIR, VetStage


@dataclass
class FinetuneResult:
    run_dir: Path
    adapter_dir: Path
    train: dict[str, Any]
    eval_report: dict[str, Any] | None


def finetune(cfg: Config, evaluate_after: bool = True, on_validation: Any = None) -> FinetuneResult:
    """`on_validation(step, val_loss)`: called after each validation pass of the loop (a search trial prunes)."""
    from tunesmith.data.load import load_splits
    from tunesmith.track.run_dir import RunDir
    from tunesmith.train import distributed

    out = console()
    if evaluate_after:
        check_eval_settings(cfg)  # a typo in an eval setting fails now, not after training
    device, autocast_dtype = setup_runtime(cfg)
    dp, device = distributed.start_run(cfg, device)  # launched on N processes: this rank's device, else as is
    evaluate_after, out.quiet = evaluate_after and dp.is_main, not dp.is_main  # rank 0 evaluates and reports
    vet_stage = VetStage(cfg, out) if cfg.vet.enabled else None
    model: Any = None
    tokenizer: Any = None
    if vet_stage is not None and vet_stage.needs_model():
        model, tokenizer = load_base_model(cfg, device)
        vet_stage.use_model(model, tokenizer)
    splits, data_report = load_splits(cfg.data, cfg.run.seed, prepare=vet_stage)
    run = dp.main_first(lambda: RunDir.create(  # rank 0 creates the run folder, the others open it
        cfg.run.output_dir,
        config_to_dict(cfg),
        run_id=cfg.run.run_id,
        data_sha256=data_report.sha256,
        digest=config_hash(cfg),
        seed=cfg.run.seed,
        device=str(device),
    ), share=lambda created: str(created.path), rebuild=RunDir)
    out.print(f"[bold]run[/] {run.path}  device={device} precision={autocast_dtype or 'fp32'}")
    if vet_stage is not None:
        vet_stage.write(run.path / VET_SUBDIR)
    if cfg.augment.enabled:  # after the split, so augmented records only ever join the training split
        augment_stage = AugmentStage(cfg, out)
        splits.train = splits.train + augment_stage(splits.train, splits.val + splits.test)
        augment_stage.write(run.path / AUGMENT_SUBDIR)
    out.print(f"data: {data_report.format}, splits {splits.counts()}")

    if model is None:
        model, tokenizer = load_base_model(cfg, device)
    style, train_examples, val_examples = encode_for_training(cfg, splits, data_report.to_dict(), tokenizer, run, out)
    audit_stage = AuditStage(cfg, out) if audit_enabled(cfg) else None
    if audit_stage is not None:  # canaries join the training examples only; members are fixed before training
        train_examples = train_examples + audit_stage.prepare(splits, tokenizer, style, run.path)

    base_eval = None
    if evaluate_after and cfg.eval.compare_base:
        base_eval = evaluate_base(model, tokenizer, splits, style, cfg, device, autocast_dtype, out)

    model, adapter_dir, train_summary = train_adapter(
        cfg, model, tokenizer, train_examples, val_examples, run, device, autocast_dtype, out,
        on_validation=on_validation,
    )
    distributed.stop()
    if not dp.is_main:
        return FinetuneResult(run.path, adapter_dir, train_summary, None)
    if audit_stage is not None:
        audit_stage.run(model, tokenizer, run.path)

    report = None
    if evaluate_after:
        tuned_eval = evaluate_tuned(model, tokenizer, splits, style, cfg, device, autocast_dtype, out)
        report = write_evaluation(base_eval, tuned_eval, cfg, run.path, out, render=False)
    run.finish()
    if cfg.eval.report_html:  # after finish(): the report's manifest shows the end time
        from tunesmith.evaluate.run_report import render_run_report

        out.print(f"report: {render_run_report(run.path)}")
    mirrored = mirror_to_trackers(cfg, run)
    if mirrored:
        out.print(f"mirrored to {', '.join(mirrored)}")
    return FinetuneResult(run.path, adapter_dir, train_summary, report)


def encode_for_training(cfg: Config, splits: Any, data_report: dict[str, Any], tokenizer: Any, run: Any,
                        out: Any) -> tuple[Any, list, list]:
    """Prompt style and encoded train/val examples; writes data_report.json with the encoding counts."""
    style = prompt_style(cfg.encode, splits.train)
    train_examples, train_encode = encode_split(splits.train, tokenizer, style, cfg.encode)
    val_examples, val_encode = encode_split(splits.val, tokenizer, style, cfg.encode)
    run.write_json(
        "data_report.json",
        {**data_report, "encode": {"train": train_encode.to_dict(), "val": val_encode.to_dict()}},
    )
    enc = train_encode
    out.print(f"encoded train: {enc.kept} kept, {enc.truncated} truncated, {enc.dropped} dropped; "
              f"{enc.kept_tokens:,} tokens, {enc.target_tokens:,} of them answer tokens")
    return style, train_examples, val_examples


def train_adapter(cfg: Config, model: Any, tokenizer: Any, train_examples: list, val_examples: list, run: Any,
                  device: Any, autocast_dtype: Any, out: Any, trackers: list | None = None,
                  on_validation: Any = None) -> tuple[Any, Path, dict]:
    """Adapter on the base model, the loop (resuming from the run's checkpoints), adapter/ and train_report.json.

    `trackers` replaces the loop's default sink (the run folder's metrics.jsonl); `tunesmith run` passes that
    sink plus its live view.
    """
    from tunesmith.models.adapters import apply_adapter, count_parameters, place_for_training
    from tunesmith.models.export import save_adapter
    from tunesmith.train import distributed
    from tunesmith.train.loop import seed_everything, train
    from tunesmith.train.strategy import make_strategy

    seed_everything(cfg.run.seed)  # the adapter's initial weights come from the run's seed, not from the RNG's history
    model = apply_adapter(model, cfg.adapter)
    trainable, total = count_parameters(model)
    out.print(f"{cfg.adapter.method}: {trainable:,} trainable of {total:,} parameters")
    model = place_for_training(model, cfg.adapter.method, device, autocast_dtype)
    train_items, val_items, collate = training_items(cfg, train_examples, val_examples, tokenizer.pad_token_id, out)
    strategy = make_strategy(cfg.train.strategy, cfg)
    result = train(model, train_items, val_items, cfg.train, run, device, autocast_dtype, collate,
                   strategy=strategy, seed=cfg.run.seed, trackers=trackers, on_validation=on_validation)
    if cfg.train.strategy == "dp":
        from tunesmith.train.dp_accounting import record_privacy

        privacy = strategy.report()  # type: ignore[attr-defined]
        record_privacy(run, privacy)
        out.print(f"privacy: epsilon {privacy['epsilon']:.3f} at delta {privacy['delta']:g} after "
                  f"{privacy['steps']} steps (noise multiplier {privacy['noise_multiplier']:.4f}, "
                  f"sample rate {privacy['sample_rate']:.4g}, {privacy['accountant']} accountant)")
    if not distributed.current().is_main:  # rank 0 writes the adapter and the reports
        return model, run.path / "adapter", summarise_training(result, run.path, out)
    adapter_dir = save_adapter(model, run.path / "adapter", tokenizer)
    train_summary = summarise_training(result, run.path, out)
    run.write_json("train_report.json", train_summary)
    return model, adapter_dir, train_summary


def training_items(cfg: Config, train_examples: list, val_examples: list, pad_id: int, out: Any):
    """Packed rows (or padded examples, for methods that keep their own KV cache) and the matching collate."""
    from tunesmith.encode.pack import pack_examples
    from tunesmith.models.adapters import PEFT_METHODS

    packing = cfg.encode.packing and PEFT_METHODS.get(cfg.adapter.method).supports_packing
    if cfg.encode.packing and not packing:
        out.print(f"[yellow]{cfg.adapter.method} keeps its own KV cache, so examples are padded, not packed[/]")
    if packing and cfg.train.strategy == "dp":
        packing = False  # DP-SGD clips each example's gradient: one row must be one example
        out.print("[yellow]dp: the privacy unit is one example, so examples are padded, not packed[/]")
    if packing:
        train_items: list[Any] = pack_examples(train_examples, cfg.encode.max_seq_length, seed=cfg.run.seed)
        val_items: list[Any] = pack_examples(val_examples, cfg.encode.max_seq_length, seed=cfg.run.seed)
    else:
        train_items, val_items = list(train_examples), list(val_examples)
    return train_items, val_items or None, build_collate(packing, pad_id)


def summarise_training(result: Any, run_path: Path, out: Any) -> dict[str, Any]:
    """Print what the loop did (trained, resumed, or found already finished) and return train_report.json."""
    if result.resumed_from_step == result.steps:
        out.print(f"already trained to step {result.steps} (checkpoint in {run_path}); nothing left to train")
    else:
        resumed = f" (resumed at step {result.resumed_from_step})" if result.resumed_from_step else ""
        out.print(f"trained {result.steps} steps{resumed} in {result.elapsed_s:.0f}s, "
                  f"{result.tokens_per_s:.0f} non-pad tokens/s")
    return {
        "steps": result.steps,
        "train_loss": result.train_loss,
        "val_loss": result.val_loss,
        "elapsed_s": round(result.elapsed_s, 2),
        "tokens_per_s": round(result.tokens_per_s, 1),
        "resumed_from_step": result.resumed_from_step,
    }


def load_base_model(cfg: Config, device: Any) -> tuple[Any, Any]:
    """The base model on `device`: 4-bit on the GPU for QLoRA, else fp32 weights (autocast computes)."""
    from tunesmith.models.load import load_model_and_tokenizer, load_quantized

    if cfg.adapter.method == "qlora":
        return load_quantized(cfg.model)  # already on its GPU; 4-bit models refuse `.to`
    model, tokenizer = load_model_and_tokenizer(cfg.model)
    return model.to(device), tokenizer


def mirror_to_trackers(cfg: Config, run: Any) -> list[str]:
    """Copy the finished run folder (params, metrics per step, artifacts, tags) into the configured trackers."""
    if not any(name != "run_dir" for name in cfg.track.trackers):
        return []
    from tunesmith.track.mirror import mirror_run

    return mirror_run(run, cfg.track.trackers)
