"""The web UI with FastAPI's TestClient: pages render, the form covers the config, security holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from tunesmith.config import Config, load_config  # noqa: E402
from tunesmith.config.template import field_help  # noqa: E402
from tunesmith.web import config_form  # noqa: E402
from tunesmith.web.app import TOKEN_COOKIE, create_app  # noqa: E402
from tunesmith.web.workspace import Workspace  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _finished_run(runs: Path, run_id: str = "20250101-000000-aaaa") -> Path:
    """A run folder as a finished CLI run leaves it (the files the pages read)."""
    path = runs / run_id
    (path / "vet").mkdir(parents=True)
    (path / "config.yaml").write_text("run:\n  seed: 0\ntrain:\n  epochs: 2.0\n")
    (path / "manifest.json").write_text(json.dumps({"run_id": run_id, "start_time": "2025-01-01T00:00:00+00:00",
                                                    "end_time": "2025-01-01T00:02:05+00:00"}))
    rows = [{"step": 5, "epoch": 0.5, "loss": 2.0, "lr": 1e-3, "tokens_per_s": 900.0, "elapsed_s": 5.0},
            {"step": 10, "epoch": 1.0, "loss": 1.5, "lr": 5e-4, "tokens_per_s": 1000.0, "elapsed_s": 10.0},
            {"step": 10, "val_loss": 1.7}]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "train_report.json").write_text(json.dumps({"steps": 20, "train_loss": 1.5, "val_loss": 1.7}))
    (path / "eval_report.json").write_text(json.dumps({
        "primary_metric": "accuracy", "n": 4, "kind": "label", "labels": ["a", "b"],
        "metrics": {"accuracy": {"base": 0.25, "tuned": 0.75, "delta": 0.5}}}))
    (path / "report.html").write_text("<html><body><h1>REPORT-MARKER</h1></body></html>")
    quarantined = {"id": "abc", "origin": "data.jsonl:3", "filter": "dedup", "action": "removed",
                   "reason": "exact duplicate of abc-1", "score": 1.0, "original": {"text": "hello", "label": "a"}}
    (path / "vet" / "quarantine.jsonl").write_text(json.dumps(quarantined) + "\n")
    (path / "vet" / "vet_report.json").write_text(json.dumps({"records_in": 10, "records_kept": 9}))
    return path


@pytest.fixture()
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws", max_upload_bytes=1000)
    ws.ensure()
    _finished_run(ws.runs_dir)
    (ws.data_dir / "tiny.jsonl").write_text('{"text": "hi there", "label": "a"}\n{"text": "oops"}\n')
    return ws


@pytest.fixture()
def client(workspace: Workspace) -> TestClient:
    return TestClient(create_app(workspace))


def test_pages_render(client: TestClient) -> None:
    run_id = "20250101-000000-aaaa"
    expectations = {
        "/runs": [run_id, "finished", "accuracy 0.750 (+0.500)", "2m05s"],
        "/runs/new": ["train.learning_rate", "Peak learning rate for AdamW."],
        f"/runs/{run_id}": ["Stages", "loss-chart"],
        f"/runs/{run_id}/report": [f"/runs/{run_id}/report.html"],
        f"/runs/{run_id}/report.html": ["REPORT-MARKER"],
        "/chat": ["Chat playground", "No tuned model yet"],
        "/compare": [run_id],
        f"/data?run={run_id}": ["exact duplicate of abc-1", "dedup", "10 records in, 9 kept"],
        "/data?file=tiny.jsonl&tokenizer=": ["text_label", "Problems (1)"],
    }
    for url, needles in expectations.items():
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[:500])
        for needle in needles:
            assert needle in response.text, (url, needle)
        assert "http://" not in response.text.replace("http://www.w3.org", ""), url  # no external asset
    assert "default-src 'self'" in client.get("/runs").headers["content-security-policy"]


def test_status_api_reports_curves_and_progress(client: TestClient) -> None:
    status = client.get("/api/runs/20250101-000000-aaaa/status").json()
    assert status["state"] == "finished"
    assert [s["status"] for s in status["stages"]] == ["done"] * 6
    training = status["training"]
    assert training["loss"] == [[5, 2.0], [10, 1.5]] and training["val_loss"] == [[10, 1.7]]
    # 10 steps per epoch (step 10 at epoch 1.0) x 2 epochs; 10 steps left at 1 s a step
    assert training["total_steps"] == 20 and training["eta_s"] == pytest.approx(10.0)
    assert training["tokens_per_s"] == 1000.0
    assert not status["can_stop"] and not status["can_resume"]  # a CLI run is resumed from the CLI


def test_form_has_an_input_for_every_config_field(client: TestClient) -> None:
    page = client.get("/runs/new").text
    names = [name for name, _, _ in field_help()]
    assert len(names) > 50
    missing = [n for n in names if f'name="{n}"' not in page]
    assert missing == []
    for name, _, doc in field_help()[:40]:
        assert doc.split("`")[0].strip()[:30].replace("'", "&#39;") in page, name


def test_form_yaml_round_trip_matches_the_cli_loader() -> None:
    cfg = load_config(REPO / "configs" / "demo.yaml")
    values = config_form.form_values(cfg)
    yaml_text = config_form.raw_to_yaml(config_form.form_to_raw(values.items()))
    assert config_form.load_yaml_text(yaml_text) == cfg  # form -> YAML -> CLI loader
    assert config_form.form_values(config_form.load_yaml_text(yaml_text)) == values  # YAML -> form
    # the browser posts an unchecked box as its hidden "false" only, a checked one as "false" then "true"
    pairs = [*values.items(), ("encode.packing", "false"), ("eval.label_loglik", "false"),
             ("eval.label_loglik", "true"), ("eval.metrics", "[accuracy, macro_f1]"), ("data.max_records", "")]
    changed = config_form.load_yaml_text(config_form.raw_to_yaml(config_form.form_to_raw(pairs)))
    assert changed.encode.packing is False and changed.eval.label_loglik is True
    assert changed.eval.metrics == ["accuracy", "macro_f1"] and changed.data.max_records is None
    assert config_form.form_to_raw(config_form.form_values(Config()).items()) == {}  # defaults: empty YAML


def test_yaml_endpoints_and_form_errors(client: TestClient) -> None:
    out = client.post("/api/config/yaml", content="train.epochs=2&adapter.r=oops",
                      headers={"content-type": "application/x-www-form-urlencoded"}).json()
    assert "epochs: 2" in out["yaml"] and any("adapter.r" in p for p in out["problems"])
    fields = client.post("/api/config/fields", content="train:\n  learning_rate: 2e-4\n").json()
    assert fields["values"]["train.learning_rate"] == "0.0002"
    bad = client.post("/api/config/fields", content="train:\n  learnin_rate: 1\n")
    assert bad.status_code == 400 and "did you mean train.learning_rate" in bad.json()["problems"][0]
    page = client.post("/runs/new", content="train.epochs=-1&adapter.method=lora",
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert page.status_code == 400 and "train.epochs" in page.text


@pytest.mark.parametrize("url", [
    "/runs/..%2F..%2Fetc", "/runs/%2Fetc%2Fpasswd/report.html", "/api/runs/..%2Fdata/status",
    "/runs/nope/report.html", "/data?file=..%2F..%2Fetc%2Fpasswd", "/data?file=%2Fetc%2Fpasswd",
    "/data?run=..", "/compare?a=..&b=x", "/runs/.hidden",
])
def test_traversal_through_run_ids_and_file_names_is_refused(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code in (404, 422), (url, response.status_code)
    assert "root:" not in response.text


def test_a_symlink_out_of_the_runs_folder_is_refused(client: TestClient, workspace: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "report.html").write_text("SECRET")
    (workspace.runs_dir / "link").symlink_to(outside)
    response = client.get("/runs/link/report.html")
    assert response.status_code == 404 and "SECRET" not in response.text


def test_upload_is_size_limited_named_safely_and_kept_inside(client: TestClient, workspace: Workspace) -> None:
    ok = client.post("/api/data/upload", params={"name": "../../evil dir/My File.jsonl"},
                     content=b'{"text": "x", "label": "y"}\n')
    assert ok.status_code == 200 and ok.json()["name"] == "My_File.jsonl"
    assert (workspace.data_dir / "My_File.jsonl").is_file()
    assert not (workspace.root.parent / "evil dir").exists()
    big = client.post("/api/data/upload", params={"name": "big.jsonl"}, content=b"x" * 1001)
    assert big.status_code == 413 and not (workspace.data_dir / "big.jsonl").exists()
    wrong = client.post("/api/data/upload", params={"name": "run.sh"}, content=b"echo")
    assert wrong.status_code == 404 and not (workspace.data_dir / "run.sh").exists()
    assert sorted(p.name for p in workspace.data_dir.iterdir()) == ["My_File.jsonl", "tiny.jsonl"]


def test_streamed_upload_over_the_limit_keeps_nothing(workspace: Workspace) -> None:
    import asyncio

    from tunesmith.web.workspace import UploadTooLargeError

    async def chunks():  # no content-length: the limit is enforced while streaming
        for _ in range(5):
            yield b"y" * 300

    with pytest.raises(UploadTooLargeError):
        asyncio.run(workspace.save_upload("stream.jsonl", chunks()))
    assert sorted(p.name for p in workspace.data_dir.iterdir()) == ["tiny.jsonl"]


def test_token_is_required_on_every_request_when_set(workspace: Workspace) -> None:
    client = TestClient(create_app(workspace, token="s3cret"))
    for url in ("/runs", "/static/chart.js", "/api/runs", "/runs/20250101-000000-aaaa/report.html"):
        assert client.get(url).status_code == 401, url
    assert client.get("/runs", headers={"X-Tunesmith-Token": "wrong"}).status_code == 401
    assert client.get("/runs", headers={"X-Tunesmith-Token": "s3cret"}).status_code == 200
    assert client.get("/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    first = client.get("/runs?token=s3cret")
    assert first.status_code == 200 and client.cookies.get(TOKEN_COOKIE) == "s3cret"
    assert client.get("/api/runs").status_code == 200  # the cookie carries it from then on


def test_token_generated_off_localhost_and_not_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from tunesmith.cli.ui_commands import resolve_token

    monkeypatch.delenv("TUNESMITH_UI_TOKEN", raising=False)
    assert resolve_token("127.0.0.1", None) is None
    generated = resolve_token("0.0.0.0", None)
    assert generated and len(generated) >= 24 and resolve_token("0.0.0.0", None) != generated
    assert resolve_token("0.0.0.0", "mine") == "mine"


def test_foreign_hosts_and_cross_origin_posts_are_refused(workspace: Workspace) -> None:
    from tunesmith.web.app import LOCAL_HOSTS

    client = TestClient(create_app(workspace, allowed_hosts=LOCAL_HOSTS), base_url="http://127.0.0.1:7860")
    assert client.get("/runs").status_code == 200
    assert client.get("/runs", headers={"host": "evil.example:7860"}).status_code == 403  # DNS rebinding
    cross = client.post("/api/config/yaml", content="", headers={"origin": "http://evil.example"})
    assert cross.status_code == 403
    same = client.post("/api/config/yaml", content="", headers={"origin": "http://127.0.0.1:7860"})
    assert same.status_code == 200


def test_mlflow_flag_explains_what_to_install_without_the_full_package(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tunesmith.cli import ui_commands
    from tunesmith.core.errors import DependencyError

    monkeypatch.setattr(ui_commands, "find_mlflow_ui", lambda: None)
    with pytest.raises(DependencyError) as err:
        ui_commands.start_mlflow(tmp_path / "runs", 5000)
    message = str(err.value)
    store = (tmp_path / "runs" / "mlflow.db").resolve()
    assert f"mlflow ui --workers 1 --port 5000 --backend-store-uri sqlite:///{store}" in message
    assert "mlflow==3.17.2" in message and "mlflow-skinny" in message


def test_presets_and_data_choices_prefill_the_form(client: TestClient, workspace: Workspace) -> None:
    (workspace.root / "configs").mkdir()
    (workspace.root / "configs" / "demo.yaml").write_text((REPO / "configs" / "demo.yaml").read_text())
    page = client.get("/runs/new?preset=configs/demo.yaml").text
    assert 'name="train.learning_rate" value="0.001"' in page and "learning_rate: 1.0e-3" in page  # its own YAML
    assert client.get("/runs/new?preset=../../etc/passwd").status_code == 404
    page = client.get("/runs/new", params={"data": "tiny.jsonl"}).text
    assert 'name="data.train_file" value="data/tiny.jsonl"' in page
    page = client.get("/runs/new", params={"data": "bundled:intent-recognition"}).text
    assert 'name="data.train_file" value="bundled:intent-recognition"' in page
    assert client.get("/runs/new", params={"data": "bundled:../../x"}).status_code == 404
    assert "bundled:intent-recognition" in client.get("/data").text


def test_a_taken_run_id_is_a_form_problem_not_a_second_run(client: TestClient, workspace: Workspace) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    page = client.post("/runs/new", content="run.run_id=20250101-000000-aaaa&train.epochs=1", headers=form)
    assert page.status_code == 400 and "exists already" in page.text
    assert not (workspace.runs_dir / "20250101-000000-aaaa" / "ui_worker.json").exists()
    bad = client.post("/runs/new", content="run.run_id=a%2Fb", headers=form)
    assert bad.status_code == 400 and "invalid run id" in bad.text


def test_each_side_of_the_playground_sees_its_own_earlier_answers() -> None:
    from tunesmith.core.records import PromptStyle
    from tunesmith.web.playground import Exchange, conversation

    earlier = [Exchange("play jazz", "base said A", "tuned said B")]
    base = conversation("sys", None, earlier, "and rock?", "base")
    tuned = conversation("sys", None, earlier, "and rock?", "tuned")
    assert [m["role"] for m in base] == ["system", "user", "assistant", "user"]
    assert base[2]["content"] == "base said A" and tuned[2]["content"] == "tuned said B"
    assert base[-1] == tuned[-1] == {"role": "user", "content": "and rock?"}
    style = PromptStyle(label_prompt="Labels: {labels}. Text: {text}", labels=("music", "weather"))
    phrased = conversation(None, style, [], "play jazz", "tuned")
    assert phrased == [{"role": "user", "content": "Labels: music, weather. Text: play jazz"}]
