"""The report's "Leakage audit" section, from `audit_report.json` (written by `tunesmith.recipes.audit`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.evaluate.privacy_section import epsilon_text
from tunesmith.evaluate.report_html import card, esc, fmt, read_section_report, table

AUDIT_REPORT = "audit_report.json"


def audit_section(run_path: Path) -> tuple[str, str, str] | None:
    """(anchor, title, body html) for an audited run; None when the run has no audit report."""
    report = read_section_report(Path(run_path) / AUDIT_REPORT, "canaries")
    if report is None:
        return None
    return "audit", "Leakage audit", render_audit_report(report)


def render_audit_report(report: dict[str, Any]) -> str:
    epsilon = report["empirical_epsilon"]
    verdict = epsilon["verdict"]
    colour = {"FAIL": "#b00020", "PASS": "#1b5e20"}.get(verdict, "#555")
    cards = [
        card("DP consistency", f'<span style="color:{colour}">{esc(verdict)}</span>'),
        card("empirical epsilon, lower bound", fmt(epsilon["max_epsilon_lower_bound"], 3)),
        card("claimed epsilon", epsilon_text((epsilon.get("claimed") or {}).get("epsilon"))),
    ]
    return (f'<div class="cards">{"".join(cards)}</div><p>{esc(report["consistency"])}</p>'
            + _canary_html(report["canaries"]) + _membership_html(report["membership"]) + _epsilon_html(epsilon))


def _canary_html(canaries: dict[str, Any]) -> str:
    rows = []
    for count, group in canaries["by_repetitions"].items():
        rows.append(["reference (never inserted)" if count == "0" else f"{count} copies", str(group["canaries"]),
                     fmt(group["mean_exposure"], 2), fmt(group["mean_exposure_sample"], 2),
                     fmt(group["mean_exposure_skewnorm"], 2)])
    return (f"<h3>Canary exposure</h3><p>Secrets such as <code>{esc(canaries['template'])}</code> inserted into the "
            f"training split; exposure = log2 |R| &minus; log2 rank, in bits (at most "
            f"{fmt(canaries['max_exposure_bits'], 2)}). Ranks are estimated from {canaries['samples']} random "
            f"candidates ({esc(canaries['method'])} is the headline; the sampled estimate resolves up to "
            f"{fmt(canaries['sample_resolution_bits'], 1)} bits). Never-inserted canaries should average about "
            "1.44 bits.</p>"
            + table(["canaries", "count", "mean exposure", "sampled", "skew-normal"], rows, numeric=(1, 2, 3, 4)))


def _membership_html(membership: dict[str, Any]) -> str:
    attacks = membership.get("attacks") or {}
    if not attacks:
        return "<h3>Membership inference</h3><p class=\"muted\">No members or non-members to score.</p>"
    rows = [[esc(name), fmt(a["auc"], 3), fmt(a["tpr_at_1pct_fpr"], 3)] for name, a in attacks.items()]
    return (f"<h3>Membership inference</h3><p>{membership['members']} training records (members) against "
            f"{membership['non_members']} held-out records, chosen before training. AUC 0.5 is chance.</p>"
            + table(["attack", "AUC", "TPR at 1% FPR"], rows, numeric=(1, 2)))


def _epsilon_html(epsilon: dict[str, Any]) -> str:
    rows = [[esc(a["audit"]), str(a["group_size"]), fmt(a.get("epsilon_lower_bound"), 3), fmt(a["claimed_epsilon"], 3),
             esc(a["status"])] for a in epsilon["audits"]]
    return (f"<h3>Empirical epsilon</h3><p>Lower bounds at {epsilon['confidence']:.0%} confidence (Clopper-Pearson, "
            "jointly over every threshold and audit); a canary inserted k times is checked against the group "
            "guarantee k&middot;epsilon.</p>"
            + table(["audit", "copies", "epsilon >=", "claimed", "status"], rows, numeric=(1, 2, 3)))
