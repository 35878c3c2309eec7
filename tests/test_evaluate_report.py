"""report.html from a fixture run folder (no model): sections, no external URLs, same bytes twice, review marks,
`tunesmith report` / `tunesmith compare`, and the full eval_report.json layout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tunesmith.cli.main import main
from tunesmith.evaluate.predict import Predictions, sample_ids, score
from tunesmith.evaluate.review import MARKS_FILE
from tunesmith.evaluate.run_report import compare_runs, render_run_report
from tunesmith.evaluate.suite import ModelEval, ReportSettings, build_report, write_report_files

LABELS = ["book_restaurant", "get_weather", "play_music"]
TEXTS = [f"request number {i} from {'Mary' if i % 3 else 'John'}" for i in range(30)]
REFS = [LABELS[i % 3] for i in range(30)]
GROUPS = ["north" if i % 2 else "south" for i in range(30)]


def _model(answers: list[str], **extra: object) -> ModelEval:
    predictions = Predictions("label", sample_ids(TEXTS, REFS), TEXTS, REFS, answers,
                              [a if a in LABELS else a for a in answers], LABELS, GROUPS)
    values, stats = score(predictions)
    values.update({"loss": 1.0 if extra.pop("base", False) else 0.2})
    values["perplexity"] = 2.718
    return ModelEval(predictions, values, stats, **extra)  # type: ignore[arg-type]


def make_run(root: Path, name: str, tuned_errors: int, learning_rate: float = 1e-3) -> Path:
    """A run folder as `tunesmith train` leaves it, with made-up answers."""
    run = root / name
    (run / "vet").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({
        "run_id": name, "config_hash": "abc12345", "seed": 0, "device": "cpu",
        "data_files": {"data/intents.jsonl": "f" * 64}, "versions": {"torch": "2.13.0", "tunesmith": "0.1.0"},
        "start_time": "2026-01-01T00:00:00+00:00", "end_time": "2026-01-01T00:05:00+00:00"}))
    (run / "config.yaml").write_text(f"run:\n  seed: 0\n  run_id: {name}\ntrain:\n  learning_rate: {learning_rate}\n")
    rows = [{"step": s, "loss": 2.0 / s} for s in range(1, 11)]
    rows += [{"step": s, "val_loss": v} for s, v in ((2, 1.5), (4, 1.0), (6, 0.8), (8, 0.9), (10, 1.1))]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "vet" / "vet_report.json").write_text(json.dumps({
        "records_in": 100, "records_kept": 95, "removed": 5, "modified": 2, "flagged": 1,
        "filters": {"pii": {"enabled": True, "removed": 0, "modified": 2, "flagged": 0},
                    "dedup": {"enabled": True, "removed": 5, "modified": 0, "flagged": 1}}}))
    (run / "privacy_report.json").write_text(json.dumps({"membership_inference_auc": 0.52, "epsilon": None}))
    base = _model(["I think it is about food"] * 10 + REFS[10:20] + ["play_music"] * 10, base=True,
                  counterfactual={"tested": 30, "flips": 3, "flip_rate": 0.1, "by_category": {}, "examples": []})
    tuned_answers = list(REFS)
    for i in range(tuned_errors):
        tuned_answers[i * 3] = "get_weather" if REFS[i * 3] != "get_weather" else "play_music"
    counterfactual = {"tested": 30, "flips": 1, "flip_rate": 1 / 30,
                      "by_category": {"names": {"tested": 30, "flips": 1, "flip_rate": 1 / 30}},
                      "examples": [{"id": "x", "prompt": "from <Mary>", "swapped_prompt": "from <Wei>",
                                    "before": "play_music", "after": "get_weather", "categories": ["names"]}]}
    robustness = {"metric": "accuracy", "clean": 0.9, "n": 30, "rate": 0.1, "score": 0.9,
                  "perturbations": {"typos": {"score": 0.8, "drop": 0.1, "relative": 0.8 / 0.9, "changed": 1.0,
                                              "flipped": 0.1, "description": "Keyboard typos"},
                                    "synonyms": {"error": "DependencyError: no WordNet"}}}
    tuned = _model(tuned_answers, counterfactual=counterfactual, robustness=robustness)
    gap = {"train": 1.0, "test": 0.9, "gap_train_test": 0.1, "worse_on_test": True}
    generalisation = {"splits": {"train": 16, "test": 30}, "metrics": {"accuracy": gap}}
    report = build_report(base, tuned, ReportSettings(bootstrap_samples=200, review_samples=8), generalisation)
    write_report_files(run, base, tuned, report)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    return make_run(root, "run-a", tuned_errors=3), make_run(root, "run-b", tuned_errors=1, learning_rate=2e-3)


def test_eval_report_has_every_section(runs: tuple[Path, Path]) -> None:
    report = json.loads((runs[0] / "eval_report.json").read_text())
    assert report["n"] == 30 and report["kind"] == "label" and report["primary_metric"] == "accuracy"
    accuracy = report["metrics"]["accuracy"]
    assert accuracy["tuned"] == pytest.approx(0.9) and accuracy["ci"]["of"] == "delta"
    assert accuracy["ci"]["low"] <= accuracy["delta"] <= accuracy["ci"]["high"]
    assert report["metrics"]["loss"]["ci"] is None  # no per-example statistics for loss
    assert report["significance"]["test"] == "mcnemar_exact"
    assert report["label_details"]["tuned"]["confusion"]["labels"] == LABELS
    assert set(report["fairness"]["tuned"]["groups"]) == {"north", "south"}
    assert report["counterfactual"]["base"]["flip_rate"] == 0.1 and len(report["review"]) == 8
    assert report["settings"]["versions"]["scikit-learn"]
    lines = (runs[0] / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 60 and {json.loads(line)["model"] for line in lines} == {"base", "tuned"}


def test_report_html_has_every_section_and_no_external_reference(runs: tuple[Path, Path]) -> None:
    page = render_run_report(runs[0]).read_text(encoding="utf-8")
    for anchor in ("summary", "generalisation", "labels", "robustness", "fairness", "review", "data", "manifest"):
        assert f'<section id="{anchor}">' in page
    for text in ("McNemar", "confusion matrix (tuned)", "Counterfactual swaps", "vet/vet_report.json", "Privacy",
                 "membership_inference_auc", "f" * 64, "2.13.0", "Biggest wins", "no WordNet", "val loss was lowest",
                 "step 6", "Worst group", "demographic parity difference", "review_marks.json"):
        assert text in page, text
    assert "from &lt;Mary&gt;" in page and "<Mary>" not in page  # every text is escaped
    assert not re.search(r"https?://", page) and "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["'](?!#|data:|vet/|review_marks|privacy)""", page)  # in-page or in-folder only
    assert page.count("<svg") >= 5  # metric bars, loss curves, 2 confusion matrices, robustness, groups


def test_report_renders_to_the_same_bytes_twice(runs: tuple[Path, Path]) -> None:
    first = render_run_report(runs[1]).read_bytes()
    assert render_run_report(runs[1]).read_bytes() == first


def test_review_marks_show_in_the_next_report(runs: tuple[Path, Path], tmp_path: Path) -> None:
    run = make_run(tmp_path, "marked", tuned_errors=2)
    marks = json.loads((run / MARKS_FILE).read_text())
    first, second = list(marks)[:2]
    marks.update({first: "pass", second: {"mark": "fail", "note": "answered the wrong city"}})
    (run / MARKS_FILE).write_text(json.dumps(marks))
    page = render_run_report(run).read_text(encoding="utf-8")
    assert "review pass rate" in page and "50% of 2" in page and "answered the wrong city" in page
    assert '<span class="pass">pass</span>' in page and '<span class="fail">fail</span>' in page


def test_compare_runs_pairs_the_same_examples(runs: tuple[Path, Path]) -> None:
    comparison = compare_runs(*runs, bootstrap_samples=200)
    accuracy = comparison["metrics"]["accuracy"]
    assert accuracy["a"] == pytest.approx(0.9) and accuracy["b"] == pytest.approx(29 / 30)
    assert accuracy["delta"] == pytest.approx(29 / 30 - 0.9) and accuracy["ci"]["low"] is not None
    assert comparison["paired"] is True and comparison["significance"]["tuned_only_correct"] == 2
    assert comparison["config_changes"] == [{"field": "train.learning_rate", "a": 1e-3, "b": 2e-3}]


def test_cli_report_and_compare(runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(runs[0])]) == 0
    assert "report.html" in capsys.readouterr().out
    out_json = tmp_path / "cmp.json"
    assert main(["compare", str(runs[0]), str(runs[1]), "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "train.learning_rate" in printed
    assert json.loads(out_json.read_text())["metrics"]["accuracy"]["b"] == pytest.approx(29 / 30)
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_a_run_without_evaluation_still_renders(tmp_path: Path) -> None:
    run = tmp_path / "bare"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "bare", "seed": 1}))
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.0}\n')
    page = render_run_report(run).read_text(encoding="utf-8")
    assert "No evaluation in this run" in page and "No vetting report" in page and "eval_every_steps" in page
