"""`report.html`: one self-contained page a person can read instead of the JSON files.

`render_html(bundle)` takes what `run_report.load_bundle` read from the run folder (eval report, manifest,
metrics curves, review marks, vetting and privacy reports) and returns the page: inline CSS, plots as inline
SVG, every text escaped, links only to files inside the run folder (relative paths), no scripts, no URLs. The
same bundle renders to the same bytes.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunesmith.evaluate import plots

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:0 0 12px;border-bottom:1px solid #e4e7eb;padding-bottom:6px}
h3{font-size:15px;margin:16px 0 8px}
section{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:16px 20px;margin:16px 0}
nav a{margin-right:12px;color:#2f6fb5;text-decoration:none}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{padding:4px 8px;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.good{color:#1e7e34;font-weight:600}.bad{color:#c0392b;font-weight:600}.muted{color:#7b8794}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 180px;border:1px solid #e4e7eb;border-radius:8px;padding:10px 14px;background:#fbfcfd}
.card .v{font-size:20px;font-weight:600}.card .k{color:#7b8794;font-size:12px}
.flag{background:#fdecea;border:1px solid #f5c6cb;border-radius:6px;padding:8px 12px}
.ok{background:#eaf6ec;border:1px solid #c3e6cb;border-radius:6px;padding:8px 12px}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
td pre{max-height:9em;overflow:auto}
.plot svg{max-width:100%;height:auto}
.pass{color:#1e7e34}.fail{color:#c0392b}
"""

SECTIONS = (
    ("summary", "Summary"),
    ("generalisation", "Generalisation"),
    ("labels", "Per class"),
    ("robustness", "Robustness"),
    ("fairness", "Fairness"),
    ("review", "Review"),
    ("data", "Data vetting and privacy"),
    ("manifest", "Run manifest"),
)


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table cell: 4 decimals, 1 for large values, a dash when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return esc(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def signed(value: Any, higher_is_better: bool | None) -> str:
    """A delta with its sign, coloured good or bad by the metric's direction."""
    if not isinstance(value, (int, float)):
        return "-"
    value = value + 0.0  # -0.0 -> 0.0: no "+-0.0000"
    text = ("+" if value >= 0 else "") + fmt(value)
    if value == 0 or higher_is_better is None:
        return text
    good = (value > 0) == higher_is_better
    return f'<span class="{"good" if good else "bad"}">{text}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """An HTML table; cells are already-escaped HTML; columns in `numeric` align right."""
    head = "".join(f'<th class="num">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plot(svg: str | None) -> str:
    return f'<div class="plot">{svg}</div>' if svg else '<p class="muted">(plot unavailable: matplotlib missing)</p>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>'


def card(key: str, value: str) -> str:
    return f'<div class="card"><div class="k">{esc(key)}</div><div class="v">{value}</div></div>'


def read_section_report(path: Path, required_key: str) -> dict[str, Any] | None:
    """A run's JSON report for an optional report section: None when the file is absent, unreadable, or not the
    expected kind (it lacks `required_key`), so a stray file never breaks the report."""
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return report if isinstance(report, dict) and required_key in report else None


def render_html(bundle: Mapping[str, Any]) -> str:
    """The whole page for one run."""
    report = bundle.get("eval") or {}
    title = f"tunesmith report: {bundle.get('run_id', 'run')}"
    parts = [
        summary_section(bundle, report),
        generalisation_section(report.get("generalisation")),
        labels_section(report.get("label_details")),
        robustness_section(report.get("robustness")),
        fairness_section(report.get("fairness"), report.get("counterfactual")),
        review_section(bundle.get("review") or {}, report),
        data_section(bundle),
        # sections other packages render from their own files: (anchor, title, body html), e.g. privacy
        *(section(anchor, title, body) for anchor, title, body in bundle.get("extra_sections") or ()),
        manifest_section(bundle),
    ]
    extra = [(anchor, title) for anchor, title, _ in bundle.get("extra_sections") or ()]
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in (*SECTIONS[:-1], *extra, SECTIONS[-1]))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body><main><h1>{esc(title)}</h1>"
        f"<nav>{nav}</nav>{''.join(parts)}</main></body></html>\n"
    )


def summary_section(bundle: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    metrics = report.get("metrics") or {}
    if not metrics:
        return section("summary", "Summary", '<p class="muted">No evaluation in this run (eval_report.json is '
                       "missing): run <code>tunesmith eval</code> with the run's adapter.</p>")
    primary = report.get("primary_metric") or next(iter(metrics))
    row = metrics.get(primary, {})
    cards = [card(f"{primary} (tuned)", fmt(row.get("tuned"))), card(f"{primary} (base)", fmt(row.get("base")))]
    ci = row.get("ci") or {}
    if ci.get("low") is not None:
        cards.append(card(f"{ci.get('of', 'delta')} {ci.get('confidence', 0.95):.0%} CI",
                          f"[{fmt(ci['low'])}, {fmt(ci['high'])}]"))
    test = report.get("significance")
    if test:
        cards.append(card("McNemar p-value", f"{test['p_value']:.3g}"))
    cards += _headline_cards(bundle, report)
    rows = []
    for name, r in metrics.items():
        ci = r.get("ci") or {}
        interval = f"[{fmt(ci.get('low'))}, {fmt(ci.get('high'))}]" if ci.get("low") is not None else "-"
        direction = r.get("higher_is_better")
        arrow = "&uarr;" if direction else ("&darr;" if direction is False else "")
        rows.append([f"{esc(name)} {arrow}", fmt(r.get("base")), fmt(r.get("tuned")),
                     signed(r.get("delta"), direction), interval])
    body = f'<div class="cards">{"".join(cards)}</div>'
    body += f"<p>{esc(report.get('n'))} test examples, task kind <b>{esc(report.get('kind', '?'))}</b>. "
    body += "Intervals are paired bootstrap percentiles of the delta (tuned alone without a base model).</p>"
    body += table(["metric", "base", "tuned", "delta", "CI"], rows, numeric=(1, 2, 3, 4))
    if test:
        body += (f"<p>McNemar exact test on per-example correctness: tuned alone right on "
                 f"{test['tuned_only_correct']}, base alone on {test['base_only_correct']}, p = {test['p_value']:.3g}"
                 f"{' (significant at 0.05)' if test['p_value'] < 0.05 else ''}.</p>")
    body += plot(plots.metric_bars(metrics))
    lengths = report.get("lengths") or {}
    if lengths:
        keys = ("mean", "median", "p95", "max", "empty_rate")
        body += "<h3>Answer lengths (words)</h3>" + table(
            ["text", *keys], [[esc(side), *(fmt(v.get(k), 2) for k in keys)] for side, v in lengths.items()],
            numeric=(1, 2, 3, 4, 5))
    return section("summary", "Summary", body)


def _headline_cards(bundle: Mapping[str, Any], report: Mapping[str, Any]) -> list[str]:
    cards = []
    over = ((report.get("generalisation") or {}).get("overfitting") or {})
    if over.get("flag") is not None:
        cards.append(card("overfitting", f'<span class="bad">at step {over["turned_at_step"]}</span>'
                          if over["flag"] else '<span class="good">no</span>'))
    robust = report.get("robustness") or {}
    if robust.get("score") is not None:
        cards.append(card("robustness score", fmt(robust["score"], 3)))
    counter = (report.get("counterfactual") or {}).get("tuned") or {}
    if counter.get("flip_rate") is not None:
        cards.append(card("counterfactual flip rate", fmt(counter["flip_rate"], 3)))
    review = bundle.get("review") or {}
    if review.get("pass_rate") is not None:
        cards.append(card("review pass rate", f"{review['pass_rate']:.0%} of {review['pass'] + review['fail']}"))
    return cards


def generalisation_section(gen: Mapping[str, Any] | None) -> str:
    if not gen:
        return section("generalisation", "Generalisation", '<p class="muted">Not computed for this run.</p>')
    over = gen.get("overfitting") or {}
    verdict = over.get("reason", "")
    box = "flag" if over.get("flag") else "ok"
    body = f'<p class="{box}">{esc(verdict)}</p>' if verdict else ""
    body += plot(plots.loss_curves(gen.get("curves") or {}, over.get("turned_at_step")))
    splits = gen.get("splits") or {}
    names = [s for s in ("train", "val", "test") if s in splits]
    rows = []
    for metric, r in (gen.get("metrics") or {}).items():
        gap = r.get("gap_train_test")
        cls = "bad" if r.get("worse_on_test") else ""
        rows.append([esc(metric), *(fmt(r.get(s)) for s in names), fmt(r.get("gap_train_val")),
                     f'<span class="{cls}">{fmt(gap)}</span>' if cls else fmt(gap)])
    header = [*(f"{s} (n={splits[s]})" for s in names), "train - val", "train - test"]
    body += "<h3>Tuned model on each split</h3>" + table(["metric", *header], rows,
                                                         numeric=tuple(range(1, len(header) + 1)))
    return section("generalisation", "Generalisation", body)


def labels_section(details: Mapping[str, Any] | None) -> str:
    if not details:
        return section("labels", "Per class", '<p class="muted">Not a label task.</p>')
    body = ""
    for side in ("tuned", "base"):
        d = details.get(side)
        if not d:
            continue
        cm = d["confusion"]
        body += plot(plots.confusion(cm["matrix"], cm["labels"], cm["columns"], f"confusion matrix ({side})"))
        rows = [[esc(label), fmt(v["precision"]), fmt(v["recall"]), fmt(v["f1"]), fmt(v["support"])]
                for label, v in d["per_class"].items()]
        body += f"<h3>{esc(side)}</h3>" + table(["label", "precision", "recall", "F1", "support"], rows,
                                                 numeric=(1, 2, 3, 4))
    return section("labels", "Per class", body)


def robustness_section(robust: Mapping[str, Any] | None) -> str:
    if not robust:
        return section("robustness", "Robustness", '<p class="muted">Not computed (eval.robustness is empty).</p>')
    body = (f"<p>{esc(robust.get('metric'))} of the tuned model on {robust.get('n')} test examples, clean: "
            f"<b>{fmt(robust.get('clean'))}</b>; robustness score (mean share of the clean score kept): "
            f"<b>{fmt(robust.get('score'), 3)}</b>.</p>")
    body += plot(plots.robustness_bars(robust))
    rows = []
    for name, r in (robust.get("perturbations") or {}).items():
        if "error" in r:
            rows.append([esc(name), "-", "-", "-", "-", "-", f'<span class="muted">{esc(r["error"])}</span>'])
            continue
        example = r.get("example") or {}
        shown = (f'<br><span class="muted">e.g. {esc(example.get("after"))}</span>' if example else "")
        rows.append([esc(name), fmt(r["score"]), signed(-r["drop"], True), fmt(r["relative"], 3),
                     fmt(r["changed"], 3), fmt(r["flipped"], 3), esc(r.get("description", "")) + shown])
    body += table(["perturbation", "score", "change", "kept", "inputs changed", "answers changed", "what"], rows,
                  numeric=(1, 2, 3, 4, 5))
    return section("robustness", "Robustness", body)


def fairness_section(fair: Mapping[str, Any] | None, counter: Mapping[str, Any] | None) -> str:
    body = ""
    tuned = (fair or {}).get("tuned")
    if tuned:
        base = (fair or {}).get("base") or {}
        metric = tuned["metric"]
        body += plot(plots.group_bars(tuned["groups"], metric, base.get("groups")))
        rows = [[esc(g), fmt(v["n"]), *(fmt(v.get(m)) for m in v if m != "n")] for g, v in tuned["groups"].items()]
        first = next(iter(tuned["groups"].values()))
        body += table(["group", "n", *(m for m in first if m != "n")], rows, numeric=tuple(range(1, len(first) + 1)))
        keys = ("worst_group_metric", "metric_gap", "demographic_parity_difference", "equalized_odds_difference")
        gap_rows = [[esc(k.replace("_", " ")), fmt(tuned.get(k)), fmt(base.get(k)) if base else "-"] for k in keys]
        body += f"<p>Worst group: <b>{esc(tuned['worst_group'])}</b>.</p>"
        body += table(["gap", "tuned", "base"], gap_rows, numeric=(1, 2))
    else:
        body += '<p class="muted">No group field on the test records, so no per-group metrics.</p>'
    tuned_cf = (counter or {}).get("tuned")
    if tuned_cf:
        base_cf = (counter or {}).get("base") or {}
        body += "<h3>Counterfactual swaps (names, gendered words, nationalities)</h3>"
        if tuned_cf.get("flip_rate") is None:
            body += f'<p class="muted">{esc(tuned_cf.get("note", "nothing to swap"))}</p>'
        else:
            body += (f"<p>{tuned_cf['tested']} test inputs mention a protected term; the tuned model's label changed "
                     f"on <b>{tuned_cf['flips']}</b> ({fmt(tuned_cf['flip_rate'], 3)})"
                     + (f"; base: {fmt(base_cf.get('flip_rate'), 3)}" if base_cf else "") + ".</p>")
            rows = [[esc(c), fmt(v["tested"]), fmt(v["flips"]), fmt(v["flip_rate"], 3)]
                    for c, v in tuned_cf["by_category"].items()]
            body += table(["terms", "tested", "flips", "flip rate"], rows, numeric=(1, 2, 3))
            examples = [[f"<pre>{esc(x['prompt'])}</pre>", f"<pre>{esc(x['swapped_prompt'])}</pre>",
                         esc(x["before"]), esc(x["after"])] for x in tuned_cf.get("examples") or []]
            if examples:
                body += table(["input", "swapped", "label before", "label after"], examples)
    return section("fairness", "Fairness", body)


def review_section(review: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    rows = review.get("rows") or []
    if not rows:
        return section("review", "Review", '<p class="muted">No review samples.</p>')
    paired = any(r.get("kind") for r in rows)
    how = "the biggest wins and losses of the tuned model against the base, then unchanged ones" if paired else (
        "the tuned model's weakest answers, then a random sample")
    body = (f"<p>{len(rows)} test examples scored by {esc(report.get('primary_metric'))}: {how}. "
            "Mark each <code>\"pass\"</code> or <code>\"fail\"</code> (by the id under its mark) in "
            '<a href="review_marks.json">review_marks.json</a> and run <code>tunesmith report</code> on the run '
            f"folder again. Marked: {review.get('pass', 0)} pass, {review.get('fail', 0)} fail, "
            f"{review.get('unmarked', 0)} unmarked.</p>")
    groups = [
        ("Biggest wins", [r for r in rows if r.get("kind") == "win"]),
        ("Biggest losses", [r for r in rows if r.get("kind") == "loss"]),
        ("Unchanged, weakest tuned answers first" if paired else "Tuned answers, weakest first",
         [r for r in rows if r.get("kind") not in ("win", "loss")]),
    ]
    for title, chosen in groups:
        if not chosen:
            continue
        body += f"<h3>{esc(title)}</h3>" + table(
            ["prompt", "reference", "base", "tuned", "base score", "tuned score", "mark"],
            [[f"<pre>{esc(r['prompt'])}</pre>", f"<pre>{esc(r['reference'])}</pre>", _answer(r.get("base")),
              _answer(r["tuned"]), fmt(r.get("base_score"), 3), fmt(r.get("tuned_score"), 3),
              _mark(r)] for r in chosen],
            numeric=(4, 5),
        )
    return section("review", "Review", body)


def _answer(text: str | None) -> str:
    if text is None:
        return '<span class="muted">-</span>'
    return f"<pre>{esc(text)}</pre>" if text.strip() else '<span class="muted">(empty answer)</span>'


def _mark(row: Mapping[str, Any]) -> str:
    mark = row.get("mark")
    note = f'<br><span class="muted">{esc(row.get("note"))}</span>' if row.get("note") else ""
    shown = f'<span class="{mark}">{esc(mark)}</span>' if mark else '<span class="muted">unmarked</span>'
    return f"{shown}{note}<br><span class=\"muted\">{esc(row.get('id'))}</span>"


def data_section(bundle: Mapping[str, Any]) -> str:
    body = ""
    vet = bundle.get("vet")
    if vet:
        body += ('<h3>Vetting</h3><p><a href="vet/vet_report.json">vet/vet_report.json</a>: '
                 f"{fmt(vet.get('records_in'))} records in, {fmt(vet.get('records_kept'))} kept, "
                 f"{fmt(vet.get('removed'))} quarantined (<a href=\"vet/quarantine.jsonl\">quarantine.jsonl</a>), "
                 f"{fmt(vet.get('modified'))} changed, {fmt(vet.get('flagged'))} flagged.</p>")
        rows = [[esc(name), fmt(f.get("removed")), fmt(f.get("modified")), fmt(f.get("flagged")),
                 "on" if f.get("enabled") else "off"] for name, f in (vet.get("filters") or {}).items()]
        body += table(["filter", "removed", "modified", "flagged", "enabled"], rows, numeric=(1, 2, 3))
    else:
        body += '<p class="muted">No vetting report in this run (vet/vet_report.json).</p>'
    privacy = bundle.get("privacy")
    if privacy and "noise_multiplier" not in (privacy[1] or {}):  # a DP-SGD report has its own section
        path, content = privacy
        body += f'<h3>Privacy</h3><p><a href="{esc(path)}">{esc(path)}</a></p>' + _flat_table(content)
    data = bundle.get("data_report")
    if data:
        body += "<h3>Data</h3>" + _flat_table(data)
    return section("data", "Data vetting and privacy", body)


def _flat_table(content: Mapping[str, Any]) -> str:
    """Top-level scalar entries of a JSON report as a two-column table (nested ones as compact JSON)."""
    import json

    rows = []
    for key, value in content.items():
        shown = fmt(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else (
            f"<pre>{esc(json.dumps(value, ensure_ascii=False)[:600])}</pre>")
        rows.append([esc(key), shown])
    return table(["field", "value"], rows)


def manifest_section(bundle: Mapping[str, Any]) -> str:
    manifest = bundle.get("manifest") or {}
    rows = [[esc(k), esc(manifest.get(k))] for k in ("run_id", "config_hash", "seed", "device", "python", "platform",
                                                     "start_time", "end_time") if k in manifest]
    body = table(["field", "value"], rows)
    files = manifest.get("data_files") or {}
    if files:
        body += "<h3>Data files (sha256)</h3>" + table(["file", "sha256"],
                                                        [[esc(f), f"<code>{esc(h)}</code>"] for f, h in files.items()])
    versions = manifest.get("versions") or {}
    if versions:
        body += "<h3>Versions</h3>" + table(["package", "version"], [[esc(p), esc(v)] for p, v in versions.items()])
    settings = (bundle.get("eval") or {}).get("settings")
    if settings:
        body += "<h3>Evaluation settings</h3>" + _flat_table(settings)
    if bundle.get("config_text"):
        body += ('<details><summary>config.yaml</summary>'
                 f"<pre>{esc(bundle['config_text'])}</pre></details>")
    return section("manifest", "Run manifest", body)
