"""The report's "Differential privacy" section, from `privacy_report.json` as DP-SGD (`train.dp`) writes it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tunesmith.evaluate.report_html import card, esc, fmt, read_section_report, table

DP_REPORT = "privacy_report.json"


def dp_privacy_section(run_path: Path) -> tuple[str, str, str] | None:
    """(anchor, title, body html) for a DP-SGD run; None when the run has no DP report."""
    report = read_section_report(run_path / DP_REPORT, "noise_multiplier")
    if report is None:
        return None  # absent, or some other privacy file: the data section lists it
    return "privacy", "Differential privacy", render_dp_report(report)


def epsilon_text(value: Any) -> str:
    """Epsilon to 3 places; infinity (the noise was off: no guarantee) as the symbol."""
    if isinstance(value, (int, float)) and math.isinf(value):
        return "&infin;"
    return fmt(value, 3)


def render_dp_report(report: dict[str, Any]) -> str:
    cards = [
        card("epsilon spent", epsilon_text(report.get("epsilon"))),
        card("delta", esc(f"{report.get('delta'):g}") if isinstance(report.get("delta"), float) else fmt(None)),
        card("noise multiplier (sigma)", fmt(report.get("noise_multiplier"), 4)),
        card("sample rate (q)", fmt(report.get("sample_rate"), 5)),
        card("steps", fmt(report.get("steps"))),
    ]
    target = report.get("target_epsilon")
    budget = (f"calibrated to a budget of epsilon &le; {fmt(target, 3)}" if target is not None
              else "with the noise multiplier given in the config")
    body = f'<div class="cards">{"".join(cards)}</div>'
    body += (f"<p>Trained with DP-SGD, {budget}: Poisson-sampled batches, each example's gradient clipped to "
             f"L2 norm {fmt(report.get('max_grad_norm'), 3)}, Gaussian noise of std sigma &times; that norm per "
             f"step. The {esc(report.get('accountant', '?'))} accountant (Opacus) gives "
             f"({epsilon_text(report.get('epsilon'))}, {esc(report.get('delta'))})-differential privacy per "
             "training example. "
             f'Source: <a href="{DP_REPORT}">{DP_REPORT}</a>.</p>')
    if report.get("noise_multiplier") == 0:
        body += '<p class="flag">The noise was turned off: clipping only, no privacy guarantee.</p>'
    rows = [[esc(k), epsilon_text(v) if k == "epsilon" else fmt(v, 6)] for k, v in report.items()]
    return body + table(["field", "value"], rows)
