"""End to end in a real browser: `tunesmith ui` started as a person starts it, driven by Playwright on Debian's
chromium (never a browser Playwright downloads). Upload data, inspect it, start a run on the tiny model from the
form, watch it finish, read its report, ask the chat playground, read the vetting quarantine, start a second run
from YAML and compare the two. Screenshots go to
`test-artifacts/browser/` (the README's come from there).

    pytest -m browser tests/web/test_browser_ui.py        # `.ci/run` installs chromium first when absent
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TUNESMITH_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]


def _require_browser() -> None:
    pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"no chromium at {CHROMIUM}: `.ci/run` installs it (apt-get install chromium)")
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_demo_data(path: Path) -> Path:
    """Two intents, plus what vetting quarantines: an exact duplicate and a record with an e-mail address."""
    rows = []
    for city in ["paris", "rome", "oslo", "lima", "cairo", "tokyo", "berlin", "quito", "delhi", "seoul"]:
        for template in ("what is the weather in {}", "will it rain in {} tomorrow", "forecast for {} please"):
            rows.append({"text": template.format(city), "label": "weather"})
    for genre in ["jazz", "rock", "folk", "punk", "soul", "metal", "blues", "disco", "funk", "opera"]:
        for template in ("play some {} music", "put on a {} playlist", "i want to hear {} songs"):
            rows.append({"text": template.format(genre), "label": "music"})
    rows.append({"text": "play some jazz music", "label": "music"})  # exact duplicate
    rows.append({"text": "send the weather for oslo to ana.silva@example.com", "label": "weather"})  # PII
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def ui_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    _require_browser()
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli.main", "ui", "--workspace", str(workspace),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"tunesmith ui exited: {proc.stdout.read().decode() if proc.stdout else ''}")
            time.sleep(0.2)
    try:
        yield url, workspace
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)  # type: ignore[attr-defined]


def test_the_demo_path_without_a_terminal(ui_server: tuple[str, Path], tiny_model_dir: Path,
                                          tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, workspace = ui_server
    data_file = write_demo_data(tmp_path / "intents.jsonl")
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.on("request", lambda r: None if r.url.startswith((url, "data:", "blob:")) else outside.append(r.url))
        try:
            # 1. data: upload, inspect with the model's tokenizer
            page.goto(f"{url}/data")
            page.set_input_files("#upload-file", str(data_file))
            page.click("#upload")
            page.wait_for_url(re.compile(r".*/data\?file=intents\.jsonl.*"))
            page.fill("#tokenizer", str(tiny_model_dir))
            page.click("#inspect-form button[type=submit]")
            expect(page.locator("#format")).to_have_text("text_label")
            expect(page.locator("#valid")).to_have_text("62")
            expect(page.locator("#histogram tr").first).to_be_visible()
            _shot(page, "data")

            # 2. new run from the generated form, prefilled with the uploaded file
            page.click("#use-file")
            expect(page.locator('[name="data.train_file"]')).to_have_value("data/intents.jsonl")
            page.click('[data-section="eval"] > summary')  # a closed block: open it as a person would
            for name, value in {"run.run_id": "tiny-ui", "model.source": str(tiny_model_dir),
                                "model.num_threads": "1", "encode.max_seq_length": "96",
                                "train.learning_rate": "3e-3", "train.batch_size": "4", "train.epochs": "4",
                                "train.log_every_steps": "2", "train.eval_every_steps": "6",
                                "eval.max_new_tokens": "4"}.items():
                page.fill(f'[name="{name}"]', value)
            page.click("#tab-yaml")
            expect(page.locator("#yaml-text")).to_have_value(re.compile(r"source: [\s\S]*tiny-llama[\s\S]*epochs: 4"))
            _shot(page, "new_run_yaml")
            page.click("#tab-form")
            _shot(page, "new_run_form")
            page.click("#start-run")

            # 3. the run page, live, until the run finishes
            page.wait_for_url(f"{url}/runs/tiny-ui")
            expect(page.locator("#step")).not_to_have_text("-", timeout=240_000)  # a first step is logged
            if page.locator("#state").inner_text() == "running":  # the tiny run may already be done
                _shot(page, "run_live")
            expect(page.locator("#state")).to_have_text("finished", timeout=240_000)
            expect(page.locator("#stages li.done")).to_have_count(6)
            expect(page.locator("#loss-chart path.series.train")).to_have_count(1)
            expect(page.locator("#loss-chart path.series.val")).to_have_count(1)
            _shot(page, "run")

            # 4. the report (base vs tuned, review table), in the UI's frame
            page.click("#report-link")
            frame = page.frame_locator("#report-frame")
            expect(frame.locator("body")).to_contain_text("tuned", timeout=20_000)
            _shot(page, "report")

            # 5. chat playground: base and tuned side by side
            page.goto(f"{url}/chat?run=tiny-ui")
            page.fill("#message", "play some punk music")
            page.click("#send")
            expect(page.locator(".answer.tuned")).not_to_have_text("…", timeout=120_000)
            expect(page.locator(".answer.base")).not_to_have_text("…")
            assert page.locator("#chat-status").inner_text() == ""
            page.fill("#message", "will it rain in oslo tomorrow")  # a second turn: both models see the first
            page.click("#send")
            expect(page.locator(".answer.tuned")).to_have_count(2)
            expect(page.locator(".answer.tuned").nth(1)).not_to_have_text("…", timeout=120_000)
            _shot(page, "chat")

            # 6. the vetting quarantine with reasons, and the runs list
            page.goto(f"{url}/data?run=tiny-ui")
            expect(page.locator("#quarantine")).to_contain_text("dedup")
            expect(page.locator("#quarantine")).to_contain_text("pii")
            _shot(page, "quarantine")
            # 7. a second run typed as YAML (the CLI's config format), then the two compared
            page.goto(f"{url}/runs/new")
            page.click("#tab-yaml")
            page.fill("#yaml-text", f"run:\n  run_id: tiny-ui-2\nmodel:\n  source: {tiny_model_dir}\n"
                      "  num_threads: 1\ndata:\n  train_file: data/intents.jsonl\nencode:\n  max_seq_length: 96\n"
                      "train:\n  learning_rate: 1.0e-3\n  batch_size: 4\n  epochs: 2\n"
                      "eval:\n  max_new_tokens: 4\n  robustness: []\n")
            page.click("#start-run")
            page.wait_for_url(f"{url}/runs/tiny-ui-2")
            expect(page.locator("#state")).to_have_text("finished", timeout=240_000)
            page.goto(f"{url}/runs")
            expect(page.locator("#runs-table")).to_contain_text("finished")
            _shot(page, "runs")
            page.check('tr[data-run="tiny-ui"] input[name="a"]')
            page.check('tr[data-run="tiny-ui-2"] input[name="b"]')
            page.click("#compare-form button[type=submit]")
            expect(page.locator("#compare-table")).to_contain_text("accuracy")
            expect(page.locator("body")).to_contain_text("train.learning_rate")  # the config change is listed
            _shot(page, "compare")
        except Exception:
            _shot(page, "failure")
            raise
        finally:
            browser.close()
    assert outside == []  # nothing fetched from anywhere but the UI itself
    run = workspace / "runs" / "tiny-ui"
    # the same run folder `tunesmith train` writes
    for name in ("config.yaml", "manifest.json", "metrics.jsonl", "eval_report.json", "report.html", "adapter"):
        assert (run / name).exists(), name
    assert (run / "ui_worker.rc").read_text().strip() == "0"


def copy_screenshots_to_docs() -> None:  # pragma: no cover - run by hand after the browser test
    docs = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    docs.mkdir(parents=True, exist_ok=True)
    for name in ("data", "new_run_form", "run_live", "run", "report", "chat", "quarantine", "compare"):
        if (ARTIFACTS / f"{name}.png").is_file():  # run_live only when the shot caught the run mid-training
            shutil.copy(ARTIFACTS / f"{name}.png", docs / f"ui_{name}.png")
