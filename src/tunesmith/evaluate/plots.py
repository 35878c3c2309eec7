"""The report's plots as inline SVG strings (matplotlib, Agg backend), with nothing that points outside the page.

matplotlib writes namespace and metadata URLs into its SVG; inside an HTML page an `<svg>` needs none of them
(the HTML parser knows the SVG and xlink namespaces), so they are stripped, and the report stays a single file
that opens offline and links nowhere. Text stays text (`svg.fonttype = none`), ids are salted with a fixed
string and the date is left out, so the same report renders to the same bytes.

Every function returns None when there is nothing to draw, or when matplotlib is not installed.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

BASE_COLOUR = "#9aa5b1"
TUNED_COLOUR = "#2f6fb5"
BAD_COLOUR = "#c0392b"
_STRIP = [
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*"),
    re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL),
    re.compile(r'\s+xmlns(:\w+)?="[^"]*"'),
]


def _figure(width: float, height: float) -> tuple[Any, Any] | None:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "tunesmith", "font.size": 9})
    fig, ax = plt.subplots(figsize=(width, height))
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.tight_layout()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buffer.getvalue()
    for pattern in _STRIP:
        text = pattern.sub("", text)
    return text.strip()


def _draw(width: float, height: float, paint: Callable[[Any], None]) -> str | None:
    made = _figure(width, height)
    if made is None:
        return None
    fig, ax = made
    paint(ax)
    return _svg(fig)


def loss_curves(curves: Mapping[str, Sequence[Sequence[float]]], turned_at: int | None = None) -> str | None:
    """Train and validation loss against the optimizer step; a dashed line where val loss turned upward."""
    train, val = list(curves.get("train") or []), list(curves.get("val") or [])
    if not train and not val:
        return None

    def paint(ax: Any) -> None:
        if train:
            ax.plot([p[0] for p in train], [p[1] for p in train], color=TUNED_COLOUR, label="train loss")
        if val:
            ax.plot([p[0] for p in val], [p[1] for p in val], "o-", color="#e67e22", label="val loss")
        if turned_at is not None:
            ax.axvline(turned_at, color=BAD_COLOUR, linestyle="--", label=f"val loss turned (step {turned_at})")
        ax.set_xlabel("step")
        ax.set_ylabel("loss per answer token")
        ax.legend(frameon=False)

    return _draw(6.5, 3.2, paint)


def metric_bars(rows: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Base vs tuned for the metrics on a 0-1 scale (0-100 scores divided by 100, marked so)."""
    names, base, tuned = [], [], []
    for name, row in rows.items():
        value = row.get("tuned")
        if not isinstance(value, (int, float)) or row.get("higher_is_better") is not True:
            continue  # only higher-is-better scores: one direction per chart
        scale = 100.0 if value > 1.0 or name in ("bleu", "chrf", "ter") else 1.0
        if value / scale > 1.5:
            continue
        names.append(name + (" /100" if scale == 100.0 else ""))
        tuned.append(value / scale)
        b = row.get("base")
        base.append(b / scale if isinstance(b, (int, float)) else 0.0)
    if not names:
        return None

    def paint(ax: Any) -> None:
        positions = list(range(len(names)))
        # y grows downward after invert_yaxis: base sits above tuned in each pair
        ax.barh([p - 0.2 for p in positions], base, height=0.4, color=BASE_COLOUR, label="base")
        ax.barh([p + 0.2 for p in positions], tuned, height=0.4, color=TUNED_COLOUR, label="tuned")
        ax.set_yticks(positions, names)
        ax.invert_yaxis()
        ax.set_xlim(0, max(1.0, *tuned, *base))
        ax.legend(frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)

    return _draw(6.5, 0.45 * len(names) + 1.0, paint)


def confusion(matrix: Sequence[Sequence[int]], rows: Sequence[str], columns: Sequence[str], title: str) -> str | None:
    """A heat map of counts, true label down, predicted label across, each cell labelled."""
    if not matrix:
        return None

    def paint(ax: Any) -> None:
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        peak = max((max(r) for r in matrix), default=0) or 1
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                if count:
                    ax.text(j, i, str(count), ha="center", va="center",
                            color="white" if count > peak / 2 else "black", fontsize=8)

    size = 1.2 + 0.55 * max(len(rows), len(columns))
    return _draw(size + 1.5, size, paint)


def robustness_bars(section: Mapping[str, Any]) -> str | None:
    """The primary metric under each perturbation, with the clean score as a reference line."""
    items = [(name, r["score"]) for name, r in (section.get("perturbations") or {}).items() if "score" in r]
    if not items:
        return None

    def paint(ax: Any) -> None:
        ax.bar([n for n, _ in items], [s for _, s in items], color=TUNED_COLOUR)
        ax.axhline(section["clean"], color=BAD_COLOUR, linestyle="--", label=f"clean ({section['clean']:.3g})")
        ax.set_ylabel(section.get("metric", "score"))
        ax.legend(frameon=False)

    return _draw(6.5, 3.0, paint)


def group_bars(groups: Mapping[str, Mapping[str, Any]], metric: str, base: Mapping[str, Any] | None) -> str | None:
    """Per-group metric, tuned (and base), so the worst group stands out."""
    names = list(groups)
    if not names:
        return None

    def paint(ax: Any) -> None:
        positions = list(range(len(names)))
        if base:
            ax.bar([p - 0.2 for p in positions], [base.get(g, {}).get(metric, 0.0) for g in names], width=0.4,
                   color=BASE_COLOUR, label="base")
        ax.bar([p + (0.2 if base else 0) for p in positions], [groups[g][metric] for g in names],
               width=0.4 if base else 0.6, color=TUNED_COLOUR, label="tuned")
        ax.set_xticks(positions, names, rotation=30, ha="right")
        ax.set_ylabel(metric)
        ax.legend(frameon=False)

    return _draw(6.5, 3.0, paint)
