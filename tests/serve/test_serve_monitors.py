"""Each monitor on crafted answers, the alerts file, /metrics counters, redaction, and `tunesmith monitor`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tunesmith.serve.monitors.base import Exchange, MonitorContext, build_monitors
from tunesmith.serve.settings import ServeSettings

TRAINING = [
    "Book a table for two at an Italian restaurant near the old harbour tonight at eight.",
    "Add the new album by the quiet violinists to my Sunday morning focus playlist please.",
]
PROMPT = {"model": "base", "prompt": "hi", "max_tokens": 200}


def exchange(output: str, prompt_tokens: int = 5, latency: float = 0.5) -> Exchange:
    return Exchange("r1", "base", "hi", output, prompt_tokens, max(1, len(output.split())), latency, "stop")


def monitor(name: str, **fields: Any) -> Any:
    settings = ServeSettings(monitors=(name,), **fields)
    ctx = MonitorContext(settings, TRAINING, ["short prompt of six words"] * 40, lambda t: len(t.split()))
    return build_monitors(ctx)[0]


def test_pii_monitor_flags_contacts_not_plain_text() -> None:
    pii = monitor("pii")
    alerts = pii.observe(exchange("Write to jane.doe@example.com or call +44 20 7946 0958."))
    assert [a.kind for a in alerts] == ["pii_in_output"] and "EMAIL" in alerts[0].details["entities"]
    assert pii.observe(exchange("The weather in Paris is sunny.")) == []


def test_leakage_monitor_catches_verbatim_and_near_copies_only() -> None:
    leak = monitor("leakage")
    assert leak.observe(exchange(TRAINING[0]))[0].kind == "training_record_verbatim"
    near = leak.observe(exchange(TRAINING[1].replace("Sunday", "Saturday")))
    assert near[0].kind == "training_record_near" and 0.6 <= near[0].details["containment"] < 1
    assert leak.observe(exchange("Book a table for two somewhere nice, I think it would be lovely.")) == []
    assert leak.observe(exchange("Book a table")) == []  # too short to judge


def test_canary_monitor() -> None:
    canary = monitor("canary", canaries=["zq-canary-7731"])
    assert canary.observe(exchange("the code is ZQ-CANARY-7731 ok"))[0].details["canaries"] == ["zq-canary-7731"]
    assert canary.observe(exchange("nothing here")) == []


def test_drift_monitor_alerts_once_when_prompts_get_longer() -> None:
    drift = monitor("drift", drift_min_samples=10, drift_window=20)
    assert sum(len(drift.observe(exchange("x", prompt_tokens=5))) for _ in range(30)) == 0
    alerts = [a for _ in range(30) for a in drift.observe(exchange("x", prompt_tokens=40))]
    assert [a.kind for a in alerts] == ["input_length_drift"] and drift.gauges()["drift_prompt_length_z"] > 3


def test_quality_monitor_empty_refusal_and_rates() -> None:
    quality = monitor("quality")
    assert [a.kind for a in quality.observe(exchange(""))] == ["empty_answer"]
    assert [a.kind for a in quality.observe(exchange("I'm sorry, I can't help with that."))] == ["refusal_answer"]
    assert quality.observe(exchange("Sure: here it is.")) == []
    kinds = [a.kind for _ in range(10) for a in quality.observe(exchange("I cannot do that."))]
    assert kinds.count("refusal_rate") == 1
    assert quality.gauges()["quality_last_tokens_per_second"] > 0


def test_app_writes_alerts_counts_them_and_redacts(scripted_app: Any, tmp_path: Path) -> None:
    answer = f"{TRAINING[0]} Mail jane.doe@example.com, code zq-canary-7731."
    app, _ = scripted_app(
        answer,
        training=(TRAINING, TRAINING),
        monitor_dir=tmp_path / "monitor",
        canaries=["zq-canary-7731"],
        redact_pii=True,
    )
    with TestClient(app) as client:
        text = client.post("/v1/completions", json=PROMPT).json()["choices"][0]["text"]
        streamed = client.post("/v1/completions", json={**PROMPT, "stream": True}).text
    assert "jane.doe@example.com" not in text and "<EMAIL>" in text
    assert "jane.doe" not in streamed and streamed.rstrip().endswith("data: [DONE]")
    rows = [json.loads(line) for line in (tmp_path / "monitor" / "alerts.jsonl").read_text().splitlines()]
    kinds = sorted({r["kind"] for r in rows})
    assert kinds == ["canary_in_output", "pii_in_output", "training_record_near"]
    metrics = app.state.serve.metrics
    assert metrics.value("tunesmith_monitor_alerts_total", {"monitor": "canary", "kind": "canary_in_output"}) == 2
    assert metrics.value("tunesmith_pii_redactions_total") == 2

    from tunesmith.serve.entry import monitor_summary

    summary = monitor_summary(tmp_path)
    assert "6 alert(s)" in summary and "canary_in_output" in summary


def test_monitor_cli_summary(tmp_path: Path, capsys: Any) -> None:
    from tunesmith.cli.main import main

    (tmp_path / "monitor").mkdir()
    (tmp_path / "monitor" / "alerts.jsonl").write_text(
        json.dumps({"monitor": "pii", "kind": "pii_in_output", "model": "base", "message": "answer contains EMAIL"})
        + "\n{broken\n"
    )
    assert main(["monitor", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 alert(s)" in out and "[pii/pii_in_output] base: answer contains EMAIL" in out  # the cut line is skipped


def test_training_texts_come_from_the_vetted_records(tmp_path: Path) -> None:
    from tunesmith.core.records import ChatRecord, Message, Origin
    from tunesmith.data.rows import write_records_jsonl
    from tunesmith.serve.loading import training_texts

    origin = Origin("train.jsonl", 1)
    records = [
        ChatRecord((Message("system", "Be brief."), Message("user", "Play jazz"), Message("assistant", "OK.")), origin),
        ChatRecord((Message("user", "Book a table"), Message("assistant", "Booked.")), origin),
    ]
    (tmp_path / "vet").mkdir()
    write_records_jsonl(tmp_path / "vet" / "kept.jsonl", records)
    texts, prompts = training_texts(tmp_path, None)
    assert texts == ["Be brief.\nPlay jazz\nOK.", "Book a table\nBooked."]
    assert prompts == ["Play jazz", "Book a table"]  # the prompt side: user turns, no system prompt
    (tmp_path / "vet" / "kept.jsonl").write_text("")  # everything quarantined: no texts, no error
    assert training_texts(tmp_path, None) == ([], [])
