"""`tunesmith run`: stages skipped when up to date, invalidated by content hash, resumed after a crash, forced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.cli.main import main
from tunesmith.config import load_config
from tunesmith.core.errors import ConfigError
from tunesmith.recipes.pipeline import check_force, run_pipeline
from tunesmith.recipes.stages import STAGE_NAMES

ROWS = [("what is the weather in {}", "weather", ["paris", "oslo", "lima", "rome", "cairo", "quito"]),
        ("play some {} music", "music", ["jazz", "rock", "folk", "blues", "disco", "opera"]),
        ("set an alarm for {} tomorrow", "alarm", ["six", "seven", "noon", "nine", "ten", "five"])]
ARTIFACTS = ("data/inspect.json", "data/splits.json", "vet/kept.jsonl", "adapter/adapter_model.safetensors",
             "eval_report.json", "export/adapter_model.safetensors")


def write_data(path: Path, extra: str | None = None) -> Path:
    rows = [{"text": t.format(w), "label": label} for t, label, words in ROWS for w in words]
    if extra:
        rows.append({"text": extra, "label": "music"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def overrides(tmp_path: Path, model_dir: Path, *extra: str) -> list[str]:
    data = tmp_path / "intents.jsonl"
    if not data.exists():
        write_data(data)
    return [
        f"--model.source={model_dir}", f"--data.train_file={data}", f"--run.output_dir={tmp_path / 'runs'}",
        "--model.device=cpu", "--model.num_threads=1", "--encode.max_seq_length=64", "--data.val_fraction=0.15",
        "--train.max_steps=4", "--train.batch_size=4", "--train.learning_rate=3e-3", "--train.save_every_steps=2",
        "--train.log_every_steps=1", "--eval.max_new_tokens=3", "--eval.bootstrap_samples=0",
        "--eval.generalisation_samples=0", "--eval.robustness=[]", "--eval.counterfactual=false",
        "--eval.review_samples=0", *extra,
    ]


def pipeline(tmp_path: Path, model_dir: Path, *extra: str, force: tuple[str, ...] = ()):
    cfg = load_config(None, overrides(tmp_path, model_dir, *extra))
    return run_pipeline(cfg, tmp_path / "runs" / "p", force=force)


def ran(result) -> list[str]:
    return [name for name, status in result.statuses().items() if status == "done"]


def mtimes(run_dir: Path) -> dict[str, int]:
    return {name: (run_dir / name).stat().st_mtime_ns for name in ARTIFACTS}


def test_a_second_run_skips_every_stage_and_touches_no_artifact(tmp_path: Path, tiny_model_dir: Path) -> None:
    first = pipeline(tmp_path, tiny_model_dir)
    assert ran(first) == ["inspect", "split", "vet", "train", "evaluate", "export"]
    assert first.statuses()["augment"] == first.statuses()["search"] == "skipped"  # off in this config
    before = mtimes(first.run_dir)
    second = pipeline(tmp_path, tiny_model_dir)
    assert set(second.statuses().values()) == {"skipped"}
    records = {name: json.loads((second.run_dir / "stages" / f"{name}.json").read_text()) for name in STAGE_NAMES}
    assert [n for n, r in records.items() if r["reason"] == "up to date"] == ran(first)
    assert mtimes(second.run_dir) == before
    manifest = json.loads((second.run_dir / "manifest.json").read_text())
    assert manifest["recipe"] == "pipeline" and manifest["device"] == "cpu" and manifest["end_time"]
    assert manifest["stages"]["train"]["status"] == "skipped"


def test_editing_a_vet_setting_reruns_vet_and_what_follows_not_the_split(tmp_path: Path, tiny_model_dir: Path) -> None:
    first = pipeline(tmp_path, tiny_model_dir)
    adapter = (first.run_dir / "adapter" / "adapter_model.safetensors").read_bytes()
    kept_before = (first.run_dir / "vet" / "kept.jsonl").read_text().splitlines()
    # "play some jazz music" is 20 characters, "play some disco music" 21: the four-letter genres are quarantined
    again = pipeline(tmp_path, tiny_model_dir, "--vet.quality.min_chars=21")
    assert ran(again) == ["vet", "train", "evaluate", "export"]
    assert again.records["inspect"]["reason"] == again.records["split"]["reason"] == "up to date"
    kept_after = (again.run_dir / "vet" / "kept.jsonl").read_text().splitlines()
    assert len(kept_after) < len(kept_before)
    assert (again.run_dir / "adapter" / "adapter_model.safetensors").read_bytes() != adapter
    report = json.loads((again.run_dir / "train_report.json").read_text())
    assert report["resumed_from_step"] is None  # new inputs: trained from scratch, old checkpoints removed


def test_an_eval_setting_reruns_only_evaluation_and_export(tmp_path: Path, tiny_model_dir: Path) -> None:
    pipeline(tmp_path, tiny_model_dir)
    again = pipeline(tmp_path, tiny_model_dir, "--eval.max_new_tokens=4")
    assert ran(again) == ["evaluate", "export"]


def test_force_reruns_the_stage_and_every_later_one(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    pipeline(tmp_path, tiny_model_dir)
    adapter = tmp_path / "runs" / "p" / "adapter" / "adapter_model.safetensors"
    before = adapter.read_bytes()
    argv = ["run", "--run-dir", str(tmp_path / "runs" / "p"), "--force", "train",
            *overrides(tmp_path, tiny_model_dir)]
    assert main(argv) == 0
    assert "ran train, evaluate, export; up to date: inspect, split, vet" in capsys.readouterr().out
    records = json.loads((tmp_path / "runs" / "p" / "stages" / "train.json").read_text())
    assert records["reason"] == "forced"
    assert adapter.read_bytes() == before  # retrained from scratch: on CPU bitwise the same adapter


def test_force_names_a_stage(tmp_path: Path, capsys) -> None:
    assert check_force(["export", "vet"]) == "vet" and check_force(["all"]) == "inspect"
    with pytest.raises(ConfigError, match="one of: all, inspect, split"):
        check_force(["trian"])
    assert main(["run", "--force", "trian", f"--run.output_dir={tmp_path}"]) == 2
    assert "unknown stage 'trian'" in capsys.readouterr().err


@pytest.mark.integration
def test_a_changed_data_file_reruns_every_stage(tmp_path: Path, tiny_model_dir: Path) -> None:
    pipeline(tmp_path, tiny_model_dir)
    write_data(tmp_path / "intents.jsonl", extra="play some disco music")
    again = pipeline(tmp_path, tiny_model_dir)
    assert ran(again) == ["inspect", "split", "vet", "train", "evaluate", "export"]


@pytest.mark.integration
def test_a_crash_in_training_resumes_from_its_checkpoint(tmp_path: Path, tiny_model_dir: Path, monkeypatch) -> None:
    import tunesmith.train.loop as loop

    reference = run_pipeline(load_config(None, overrides(tmp_path, tiny_model_dir)), tmp_path / "runs" / "ref")
    real_save = loop._save

    def save_then_crash(r, step, started):  # the checkpoint of step 2 is written, then the process "dies"
        path = real_save(r, step, started)
        if step == 2:
            raise RuntimeError("simulated crash after step 2")
        return path

    monkeypatch.setattr(loop, "_save", save_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        pipeline(tmp_path, tiny_model_dir)
    crashed = json.loads((tmp_path / "runs" / "p" / "stages" / "train.json").read_text())
    assert crashed["status"] == "failed" and "simulated crash" in crashed["error"]
    monkeypatch.setattr(loop, "_save", real_save)
    again = pipeline(tmp_path, tiny_model_dir)
    assert ran(again) == ["train", "evaluate", "export"]
    assert again.records["train"]["reason"] == "resumed"
    report = json.loads((again.run_dir / "train_report.json").read_text())
    assert report["resumed_from_step"] == 2
    # the resumed run ends where an uninterrupted one does: the same adapter bytes, so the same output hash
    assert again.records["train"]["output_hash"] == reference.records["train"]["output_hash"]
    assert json.loads((again.run_dir / "eval_report.json").read_text())["metrics"] == \
        json.loads((reference.run_dir / "eval_report.json").read_text())["metrics"]


@pytest.mark.integration
def test_a_crash_in_evaluation_continues_there(tmp_path: Path, tiny_model_dir: Path, monkeypatch) -> None:
    import tunesmith.recipes.eval_suite as eval_suite

    def broken(*args, **kwargs):
        raise RuntimeError("evaluation crashed")

    monkeypatch.setattr(eval_suite, "evaluate_tuned", broken)
    with pytest.raises(RuntimeError, match="evaluation crashed"):
        pipeline(tmp_path, tiny_model_dir)
    monkeypatch.undo()
    adapter = tmp_path / "runs" / "p" / "adapter" / "adapter_model.safetensors"
    trained_at = adapter.stat().st_mtime_ns
    again = pipeline(tmp_path, tiny_model_dir)
    assert ran(again) == ["evaluate", "export"] and again.records["evaluate"]["reason"] == "resumed"
    assert adapter.stat().st_mtime_ns == trained_at


@pytest.mark.integration
def test_rerun_of_a_pipeline_run_reproduces_it_exactly(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    from tunesmith.track.listing import compare_final, final_metrics

    original = pipeline(tmp_path, tiny_model_dir).run_dir
    manifest = json.loads((original / "manifest.json").read_text())
    assert set(manifest) >= {"config_hash", "data_files", "versions", "seed", "device"}
    capsys.readouterr()
    assert main(["rerun", str(original)]) == 0
    assert "reproduced: all" in capsys.readouterr().out
    [again] = [p for p in (tmp_path / "runs").iterdir() if p.name != "p"]
    assert (again / "stages" / "train.json").is_file()  # redone by the pipeline, not by `tunesmith train`
    rows = compare_final(original, again)
    assert len(rows) == len(final_metrics(original)) > 5 and all(a == b for _, a, b in rows)


@pytest.mark.integration
def test_the_search_stage_trains_with_the_best_config(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    lr = "--search.space.train.learning_rate"
    argv = ["run", "--run-dir", str(tmp_path / "runs" / "p"),
            *overrides(tmp_path, tiny_model_dir, "--search.enabled=true", "--search.n_trials=2",
                       "--search.sampler=random", "--search.pruner=none", f"{lr}.type=loguniform",
                       f"{lr}.low=1.0e-4", f"{lr}.high=1.0e-2")]
    assert main(argv) == 0
    assert "ran inspect, split, vet, search, train, evaluate, export" in capsys.readouterr().out
    run = tmp_path / "runs" / "p"
    best = load_config(run / "search" / "best_config.yaml")
    [study] = list((run / "search").glob("search-*/search_report.json"))
    report = json.loads(study.read_text())
    assert best.train.learning_rate == pytest.approx(report["best"]["params"]["train.learning_rate"])
    assert best.train.learning_rate != 3e-3  # not the run config's own rate: training used the search's best
    assert main(argv) == 0
    assert "ran nothing" in capsys.readouterr().out


@pytest.mark.integration
def test_the_audit_stage_plants_canaries_before_training_and_audits_after(tmp_path: Path,
                                                                          tiny_model_dir: Path) -> None:
    audit = ("--audit.enabled=true", "--audit.members=4", "--audit.non_members=4", "--audit.reference_canaries=4",
             "--audit.canary_repetitions=[1]", "--audit.canaries_per_repetition=2", "--audit.exposure_samples=100")
    first = pipeline(tmp_path, tiny_model_dir, *audit)
    assert ran(first) == ["inspect", "split", "vet", "train", "evaluate", "audit", "export"]
    run = first.run_dir
    plan = json.loads((run / "audit" / "plan.json").read_text())  # written by the train stage, before training
    assert len(plan["canaries"]) == 2 + 4
    assert "membership" in json.loads((run / "audit_report.json").read_text())
    again = pipeline(tmp_path, tiny_model_dir, *audit)
    assert again.records["audit"]["reason"] == "up to date"
