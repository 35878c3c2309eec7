"""What each CLI verb does: load the config, call a recipe, print the result. Heavy imports stay inside."""

from __future__ import annotations

import argparse
from pathlib import Path

from tunesmith.cli import (
    audit_commands,
    federated_commands,
    launch_commands,
    pipeline_commands,
    search_commands,
    ui_commands,
)
from tunesmith.config import load_config
from tunesmith.config.template import field_help, render_template
from tunesmith.core.errors import TunesmithError


def fields_epilog() -> str:
    lines = ["config fields (override any with --section.field=value):"]
    for name, default, doc in field_help():
        lines.append(f"  --{name}  (default {default})\n      {doc}")
    return "\n".join(lines)


def dispatch(args: argparse.Namespace, overrides: list[str]) -> int:
    handlers = {"init": init, "train": train, "eval": evaluate, "chat": chat, "export": export, "data": data,
                "vet": vet, "report": report, "compare": compare, "augment": augment, "serve": serve,
                "monitor": monitor, "runs": runs, "rerun": rerun, "run": pipeline_commands.run,
                "search": search_commands.search, "ui": ui_commands.ui, "federated": federated_commands.federated,
                "audit": audit_commands.audit}
    return handlers[args.verb](args, overrides)


def init(args: argparse.Namespace, overrides: list[str]) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        raise TunesmithError(f"{path} exists; pass --force to overwrite it or choose another path")
    path.write_text(render_template(), encoding="utf-8")
    print(f"wrote {path}; edit it, then run: tunesmith train {path}")
    return 0


def train(args: argparse.Namespace, overrides: list[str]) -> int:
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise TunesmithError(f"{run_dir} is not a run folder (no config.yaml); pass runs/<id>")
        resume = [f"--run.output_dir={run_dir.parent}", f"--run.run_id={run_dir.name}", "--train.resume=must"]
        cfg = load_config(args.config or run_dir / "config.yaml", overrides + resume)
    else:
        cfg = load_config(args.config, overrides)  # config errors surface before heavy imports
    if launch_commands.needs_launch(cfg.launch):  # --launch.num_processes=N: rerun this command on N processes
        return launch_commands.relaunch_train(args, overrides, cfg)
    from tunesmith.recipes.finetune import finetune

    result = finetune(cfg, evaluate_after=not args.no_eval)
    print(f"run folder: {result.run_dir}\nadapter:    {result.adapter_dir}")
    return 0


def evaluate(args: argparse.Namespace, overrides: list[str]) -> int:
    cfg = load_config(args.config, overrides)  # config errors surface before heavy imports
    from tunesmith.recipes.evaluate_adapter import evaluate_adapter

    report_path = evaluate_adapter(cfg, Path(args.adapter))
    print(f"report: {report_path}")
    return 0


def report(args: argparse.Namespace, overrides: list[str]) -> int:
    from tunesmith.evaluate.run_report import render_run_report

    print(f"report: {render_run_report(Path(args.run_dir))}")
    return 0


def compare(args: argparse.Namespace, overrides: list[str]) -> int:
    import json

    from rich.console import Console

    from tunesmith.evaluate.run_report import compare_runs, render_run_comparison

    comparison = compare_runs(Path(args.run_a), Path(args.run_b))
    console = Console(highlight=False)
    console.print(render_run_comparison(comparison))
    for change in comparison["config_changes"]:
        console.print(f"  config {change['field']}: {change['a']!r} -> {change['b']!r}", markup=False)
    if args.json:
        Path(args.json).write_text(json.dumps(comparison, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"comparison: {args.json}")
    return 0


def chat(args: argparse.Namespace, overrides: list[str]) -> int:
    cfg = load_config(args.config, overrides)  # config errors surface before heavy imports
    from tunesmith.recipes.chat import chat_loop

    adapter = Path(args.adapter) if args.adapter else None
    chat_loop(cfg, adapter, messages=args.message, max_new_tokens=args.max_new_tokens)
    return 0


def export(args: argparse.Namespace, overrides: list[str]) -> int:
    from tunesmith.recipes.export_run import export_run

    out = export_run(Path(args.run_dir), merge=args.merge, out_dir=Path(args.out) if args.out else None)
    print(f"exported to {out}")
    return 0


def vet(args: argparse.Namespace, overrides: list[str]) -> int:
    cfg = load_config(args.config, overrides)  # config errors surface before heavy imports
    from tunesmith.recipes.vet_data import vet_data

    vet_data(cfg, Path(args.out) if args.out else None, dry_run=args.dry_run)
    return 0


def augment(args: argparse.Namespace, overrides: list[str]) -> int:
    cfg = load_config(args.config, overrides)  # config errors surface before heavy imports
    from tunesmith.recipes.augment_data import augment_data

    augment_data(cfg, Path(args.out) if args.out else None)
    return 0


def serve(args: argparse.Namespace, overrides: list[str]) -> int:
    from tunesmith.serve.entry import read_canaries, serve_run
    from tunesmith.serve.settings import ServeSettings

    settings = ServeSettings(max_batch_size=args.max_batch_size, max_queue=args.max_queue,
                             redact_pii=args.redact_pii, canaries=read_canaries(args.canary, args.canary_file))
    serve_run(Path(args.run_dir), args.adapter, args.host, args.port, settings)
    return 0


def monitor(args: argparse.Namespace, overrides: list[str]) -> int:
    from tunesmith.serve.entry import monitor_summary

    print(monitor_summary(Path(args.run_dir), args.last))
    return 0


def data(args: argparse.Namespace, overrides: list[str]) -> int:
    if args.data_verb != "inspect":
        raise TunesmithError("usage: tunesmith data inspect FILE")
    from tunesmith.recipes.inspect_data import inspect_data

    return inspect_data(
        Path(args.file),
        fmt=args.format,
        model_source=None if args.no_tokens else args.model,
        with_tokens=not args.no_tokens,
        max_seq_length=args.max_seq_length,
    )


def runs(args: argparse.Namespace, overrides: list[str]) -> int:
    import sys

    from rich.console import Console

    from tunesmith.track.listing import find_run, list_runs, run_detail, runs_table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)  # piped: do not squeeze to 80
    if args.runs_verb == "show":
        for renderable in run_detail(find_run(args.output_dir, args.run_id)):
            console.print(renderable)
        return 0
    if args.runs_verb == "sync":
        from tunesmith.track import mirror
        from tunesmith.track.run_dir import RunDir

        run_path = find_run(args.output_dir, args.run_id)
        done = mirror.mirror_run(RunDir(run_path), args.to)
        print(f"mirrored {run_path} into {', '.join(done) or 'nothing (run_dir is the run folder itself)'}")
        return 0
    summaries = list_runs(args.output_dir)
    if not summaries:
        print(f"no runs in {args.output_dir}; start one with `tunesmith train`")
        return 0
    console.print(runs_table(summaries, f"{len(summaries)} runs in {args.output_dir}"))
    return 0


def rerun(args: argparse.Namespace, overrides: list[str]) -> int:
    """Train again from a run's config.yaml into a new run id; exit 1 when a CPU rerun's final metrics differ."""
    from tunesmith.track.listing import is_run_folder
    from tunesmith.track.rerun import report_rerun, rerun_config

    original = Path(args.run_dir)
    if not is_run_folder(original):
        raise TunesmithError(f"{original} is not a run folder (no manifest.json); pass runs/<id>")
    cfg = rerun_config(original, overrides)
    if (original / "stages").is_dir():  # made by `tunesmith run`: redo it with the same stages
        return report_rerun(original, pipeline_commands.rerun_pipeline(cfg, original))
    from tunesmith.recipes.finetune import finetune

    result = finetune(cfg, evaluate_after=not args.no_eval)
    return report_rerun(original, result.run_dir)
