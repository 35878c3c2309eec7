"""TensorBoard tracker: event files under `<run folder>/tensorboard/` (or `track.tensorboard_dir`).

    pip install tunesmith[tensorboard]
    tensorboard --logdir runs        # every run folder's scalars side by side

Writes through torch's `SummaryWriter` (which needs the `tensorboard` package). Params and tags go in as
text summaries (Markdown tables); artifacts TensorBoard cannot show are listed in a text summary, and
small JSON reports are embedded as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.track.mirror import numeric_metrics, require, run_tags, track_settings
from tunesmith.track.run_dir import TRACKERS, RunDir

EMBED_LIMIT = 20_000  # longest text file embedded as a text summary (characters)


@TRACKERS.register("tensorboard")
class TensorBoardTracker:
    """Mirror a run folder's metrics (scalars per step), params and tags into TensorBoard event files."""

    def __init__(self, run: RunDir, log_dir: str | Path | None = None):
        require("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.run = run
        self.log_dir = Path(log_dir or track_settings(run).get("tensorboard_dir") or run.path / "tensorboard")
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        tags = run_tags(run)
        self.writer.add_text("tags", _markdown_table(tags), 0)

    def log_params(self, params: dict[str, Any]) -> None:
        self.writer.add_text("params", _markdown_table(params), 0)

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        for name, value in numeric_metrics(metrics).items():
            self.writer.add_scalar(name, value, step)

    def log_artifact(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_file() and path.suffix in {".json", ".yaml"} and path.stat().st_size <= EMBED_LIMIT:
            text = path.read_text(encoding="utf-8")
            self.writer.add_text(f"artifacts/{path.name}", "    " + text.replace("\n", "\n    "), 0)
        else:
            self.writer.add_text(f"artifacts/{path.name}", f"`{path}`", 0)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def _markdown_table(values: dict[str, Any]) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in values.items())
    return f"| name | value |\n|---|---|\n{rows}"
