"""The `tunesmith` command line.

    tunesmith init run.yaml                       # commented starter config
    tunesmith train run.yaml --train.learning_rate=2e-4
    tunesmith eval run.yaml --adapter runs/<id>/adapter
    tunesmith report runs/<id>
    tunesmith compare runs/<a> runs/<b>
    tunesmith chat --adapter runs/<id>/adapter
    tunesmith export runs/<id> --merge
    tunesmith vet run.yaml --dry-run
    tunesmith augment run.yaml --out runs/augmented
    tunesmith data inspect file.jsonl
    tunesmith runs [--output-dir runs]            # every run with its key metrics
    tunesmith runs show <id>
    tunesmith runs sync <id> --to mlflow          # mirror a run folder into MLflow / W&B / TensorBoard
    tunesmith rerun runs/<id>                     # redo a run from its config.yaml, compare the final metrics
    tunesmith run run.yaml [--force STAGE]        # every stage; the ones whose inputs did not change are skipped
    tunesmith search run.yaml                     # hyperparameter search; best_config.yaml; resumable
    tunesmith serve runs/<id> --port 8000           # OpenAI-compatible API + monitors
    tunesmith monitor runs/<id>                     # summary of the serving alerts
    tunesmith federated sim run.yaml              # federated fine-tuning (Flower), clients simulated here
    tunesmith ui [--workspace DIR] [--mlflow]       # web UI on http://127.0.0.1:7860

Bad input exits with code 2 and a message naming what to fix; `--debug` shows the traceback too.
Heavy modules (torch, transformers) are imported by the verbs that need them, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import sys

from tunesmith.cli import commands
from tunesmith.cli.audit_commands import add_audit_verb
from tunesmith.cli.federated_commands import add_federated_verb
from tunesmith.cli.pipeline_commands import add_run_verb
from tunesmith.cli.search_commands import add_search_verb
from tunesmith.cli.ui_commands import add_ui_parser
from tunesmith.core.errors import TunesmithError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunesmith",
        description="Fine-tune, evaluate and export a language model on your own data, on your own machine.",
        epilog="Any `--section.field=value` after a config file overrides it; see `tunesmith train --help`.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    init = verbs.add_parser("init", help="write a commented starter config")
    init.add_argument("path", nargs="?", default="tunesmith.yaml")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    train = verbs.add_parser(
        "train",
        help="fine-tune, then evaluate base vs tuned",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=commands.fields_epilog(),
    )
    train.add_argument("config", nargs="?", help="YAML config (default: built-in defaults)")
    train.add_argument("--no-eval", action="store_true", help="skip the evaluation after training")
    train.add_argument(
        "--resume", metavar="RUN_DIR", help="continue runs/<id> from its newest complete checkpoint (its config)"
    )

    evaluate = verbs.add_parser("eval", help="evaluate an adapter (and the base model) on the test split")
    evaluate.add_argument("config", nargs="?")
    evaluate.add_argument("--adapter", required=True, help="adapter folder, e.g. runs/<id>/adapter")

    report = verbs.add_parser("report", help="re-render a run's report.html (e.g. after marking its review)")
    report.add_argument("run_dir", help="runs/<id>")

    compare = verbs.add_parser("compare", help="compare the tuned models of two runs, paired where possible")
    compare.add_argument("run_a", help="runs/<a>")
    compare.add_argument("run_b", help="runs/<b>")
    compare.add_argument("--json", metavar="PATH", help="also write the comparison as JSON")

    chat = verbs.add_parser("chat", help="talk to the base model or a tuned adapter")
    chat.add_argument("config", nargs="?")
    chat.add_argument("--adapter", help="adapter folder; omit to chat with the base model")
    chat.add_argument("--message", "-m", action="append", help="one-shot message(s) instead of a prompt loop")
    chat.add_argument("--max-new-tokens", type=int, default=128)

    export = verbs.add_parser("export", help="export a run's adapter, optionally merged into the base model")
    export.add_argument("run_dir", help="runs/<id>")
    export.add_argument("--merge", action="store_true", help="write merged full-model safetensors")
    export.add_argument("--out", help="output folder (default: runs/<id>/export)")

    vet = verbs.add_parser(
        "vet", help="vet the data: PII, duplicates, contamination, outliers, label noise, poisoning"
    )
    vet.add_argument("config", nargs="?", help="YAML config (default: built-in defaults)")
    vet.add_argument("--dry-run", action="store_true", help="only report: write no kept.jsonl")
    vet.add_argument("--out", help="output folder (default: <run.output_dir>/vet-<data hash>-<config hash>)")

    augment = verbs.add_parser(
        "augment", help="augment the training split: EDA, typos, back-translation, LLM paraphrase, synthetic"
    )
    augment.add_argument("config", nargs="?", help="YAML config (default: built-in defaults)")
    augment.add_argument("--out", help="output folder (default: <run.output_dir>/augment-<data hash>-<config hash>)")

    serve = verbs.add_parser("serve", help="serve a run's model and adapters with an OpenAI-compatible API")
    serve.add_argument("run_dir", help="runs/<id> (its base model, adapter/ and training data for the monitors)")
    serve.add_argument("--adapter", action="append", metavar="[NAME=]PATH", help="another adapter (repeatable)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-batch-size", type=int, default=8, help="requests decoded together")
    serve.add_argument("--max-queue", type=int, default=64, help="waiting requests before 429")
    serve.add_argument("--redact-pii", action="store_true", help="redact PII from answers before they leave")
    serve.add_argument("--canary", action="append", help="a canary string that must never be answered")
    serve.add_argument("--canary-file", action="append", help="a file of canary strings, one per line")

    monitor = verbs.add_parser("monitor", help="summarise the alerts written while serving a run")
    monitor.add_argument("run_dir", help="runs/<id>")
    monitor.add_argument("--last", type=int, default=5, help="latest alerts to show")

    add_runs_verbs(verbs)
    add_run_verb(verbs)
    add_search_verb(verbs)
    add_ui_parser(verbs)
    add_federated_verb(verbs)
    add_audit_verb(verbs)

    data = verbs.add_parser("data", help="data tools")
    data_verbs = data.add_subparsers(dest="data_verb", metavar="TOOL")
    inspect = data_verbs.add_parser("inspect", help="detected format, counts, token lengths, every problem")
    inspect.add_argument("file")
    inspect.add_argument("--format", default="auto")
    inspect.add_argument("--model", help="tokenizer for the length histogram (default: the bundled model)")
    inspect.add_argument("--no-tokens", action="store_true", help="skip the token-length histogram")
    inspect.add_argument("--max-seq-length", type=int, default=512)
    return parser


def add_runs_verbs(verbs: argparse._SubParsersAction) -> None:
    runs = verbs.add_parser("runs", help="list the runs under an output dir with their key metrics")
    runs.add_argument("--output-dir", default="runs", help="folder holding the run folders (default: runs)")
    runs_verbs = runs.add_subparsers(dest="runs_verb", metavar="ACTION")
    show = runs_verbs.add_parser("show", help="one run's manifest, config changes and final metrics")
    show.add_argument("run_id", help="run id, a unique prefix of one, or runs/<id>")
    sync = runs_verbs.add_parser("sync", help="mirror a run folder into trackers (mlflow, wandb, tensorboard)")
    sync.add_argument("run_id", help="run id, a unique prefix of one, or runs/<id>")
    sync.add_argument("--to", action="append", required=True, metavar="TRACKER", help="tracker name; repeatable")
    for sub in (show, sync):
        sub.add_argument("--output-dir", default=argparse.SUPPRESS, help="folder holding the run folders")

    rerun = verbs.add_parser("rerun", help="redo a run from its saved config into a new run; compare final metrics")
    rerun.add_argument("run_dir", help="runs/<id>")
    rerun.add_argument("--no-eval", action="store_true", help="skip the evaluation (compare training metrics only)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    overrides = [a for a in rest if a.startswith("--") and "." in a.split("=", 1)[0]]
    unknown = [a for a in rest if a not in overrides]
    if unknown:
        parser.error(f"unrecognised arguments: {' '.join(unknown)}")
    if args.verb is None:
        parser.print_help()
        return 2
    try:
        return commands.dispatch(args, overrides)
    except TunesmithError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return 130


def _entry() -> None:  # pragma: no cover - console script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

