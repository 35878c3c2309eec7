"""`tunesmith audit runs/<id>`: re-run the leakage audit (canary exposure, membership inference, empirical
epsilon) on a run trained with the audit stage; writes `runs/<id>/audit_report.json` and re-renders report.html.

    tunesmith audit runs/<id>
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_audit_verb(verbs: argparse._SubParsersAction) -> None:
    audit = verbs.add_parser("audit", help="leakage audit of a run: canary exposure, membership attacks, epsilon")
    audit.add_argument("run_dir", help="runs/<id> (trained with --audit.enabled=true)")
    audit.add_argument("--no-report", action="store_true", help="do not re-render report.html")


def audit(args: argparse.Namespace, overrides: list[str]) -> int:
    from tunesmith.recipes.audit import audit_run

    report_path = audit_run(Path(args.run_dir))
    print(f"audit: {report_path}")
    if not args.no_report:
        from tunesmith.evaluate.run_report import render_run_report

        print(f"report: {render_run_report(Path(args.run_dir))}")
    return 0
