"""`tunesmith runs`, `runs show`, `runs sync` and the rerun comparison, on fixture run folders."""

from __future__ import annotations

import pytest
from run_fixtures import RUN_ID, make_run

from tunesmith.cli.main import main
from tunesmith.track.listing import UnknownRunError, compare_final, final_metrics, find_run, list_runs
from tunesmith.track.rerun import report_rerun, rerun_config


@pytest.fixture()
def runs_dir(tmp_path):
    root = tmp_path / "runs"
    make_run(root)
    make_run(root, "20250102-090000-99999999", finished=False, accuracy=0.5)
    (root / "not-a-run").mkdir()
    return root


def test_list_runs_newest_first_with_status_and_metrics(runs_dir):
    summaries = list_runs(runs_dir)
    assert [s.run_id for s in summaries] == ["20250102-090000-99999999", RUN_ID]
    newest, oldest = summaries
    assert newest.status == "unfinished" and newest.duration_s is None
    assert oldest.status == "finished" and oldest.duration_s is not None and oldest.duration_s >= 0
    assert (oldest.steps, oldest.train_loss, oldest.val_loss) == (2, 1.5, 1.7)
    assert (oldest.primary_metric, oldest.tuned, oldest.delta) == ("accuracy", 0.75, 0.5)


def test_find_run_by_id_prefix_path_and_did_you_mean(runs_dir):
    assert find_run(runs_dir, RUN_ID) == runs_dir / RUN_ID
    assert find_run(runs_dir, "20250101") == runs_dir / RUN_ID
    assert find_run(runs_dir, str(runs_dir / RUN_ID)) == runs_dir / RUN_ID
    assert find_run(runs_dir, f"runs/{RUN_ID}") == runs_dir / RUN_ID  # a path under another root: its name counts
    with pytest.raises(UnknownRunError, match="ambiguous"):
        find_run(runs_dir, "2025010")
    with pytest.raises(UnknownRunError, match=f"Did you mean '{RUN_ID}'"):
        find_run(runs_dir, "20250101-120001-1a2b3c4d")


def test_cli_runs_table_and_show(runs_dir, capsys):
    assert main(["runs", "--output-dir", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "2 runs in" in out and RUN_ID in out and "unfinished" in out and "accuracy 0.750 (+0.500)" in out
    assert main(["runs", "show", "20250101", "--output-dir", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "train.learning_rate" in out and "0.0010" in out  # differs from the default
    assert "eval.accuracy.tuned" in out and "config_hash" in out and "train.jsonl sha256 abababab" in out


def test_cli_unknown_run_exits_2_with_a_suggestion(runs_dir, capsys):
    assert main(["runs", "show", "20250101-120000-1a2b3c4e", "--output-dir", str(runs_dir)]) == 2
    err = capsys.readouterr().err
    assert "no run '20250101-120000-1a2b3c4e'" in err and f"Did you mean '{RUN_ID}'" in err
    assert main(["runs", "--output-dir", str(runs_dir / "missing")]) == 2


def test_cli_sync_mirrors_into_a_tracker(runs_dir, capsys):
    pytest.importorskip("tensorboard")
    assert main(["runs", "sync", RUN_ID, "--to", "tensorboard", "--output-dir", str(runs_dir)]) == 0
    assert list((runs_dir / RUN_ID / "tensorboard").glob("events.out.tfevents.*"))
    assert main(["runs", "sync", RUN_ID, "--to", "tensorbord", "--output-dir", str(runs_dir)]) == 2
    assert "Did you mean 'tensorboard'" in capsys.readouterr().err


def test_rerun_config_gets_a_new_id_beside_the_original(tmp_path):
    root = tmp_path / "runs"
    original = make_run(root, "20250101-000000-aaaaaaaa")
    original.write_config({"run": {"run_id": original.run_id, "output_dir": "elsewhere", "seed": 3}})
    cfg = rerun_config(original.path, ["--train.max_steps=2"])
    assert cfg.run.run_id != original.run_id and cfg.run.output_dir == str(root)
    assert cfg.run.seed == 3 and cfg.train.max_steps == 2


def test_rerun_comparison_exact_on_cpu(tmp_path):
    a = make_run(tmp_path, "a").path
    same = make_run(tmp_path, "b").path
    other = make_run(tmp_path, "c", accuracy=0.8).path
    assert "train.elapsed_s" not in final_metrics(a)  # timings never count
    assert all(x == y for _, x, y in compare_final(a, same))
    assert report_rerun(a, same) == 0
    assert report_rerun(a, other) == 1  # both on CPU: any difference fails
