"""Privacy accounting (Opacus' RDP and PRV accountants), noise calibration, the privacy report and its section."""

from __future__ import annotations

import json
import math

import pytest

from tunesmith.track.run_dir import RunDir
from tunesmith.train.dp_accounting import (
    REPORT_KEYS,
    accountant_step,
    calibrate_noise,
    epsilon_spent,
    privacy_report,
    record_privacy,
)


def test_rdp_reference_values():
    assert epsilon_spent([(1.1, 0.01, 10_000)], 1e-5, "rdp") == pytest.approx(5.6320, abs=1e-3)
    assert epsilon_spent([(1.5, 0.04, 2_250)], 1e-5, "rdp") == pytest.approx(7.32911, abs=1e-4)


def test_prv_reference_value():
    assert 5.18 <= epsilon_spent([(1.1, 0.01, 10_000)], 1e-5, "prv") <= 5.21


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_epsilon_rises_with_steps_and_falls_with_noise(accountant):
    by_steps = [epsilon_spent([(1.1, 0.01, n)], 1e-5, accountant) for n in (100, 1_000, 5_000)]
    by_sigma = [epsilon_spent([(s, 0.01, 1_000)], 1e-5, accountant) for s in (0.8, 1.1, 2.0)]
    assert by_steps == sorted(by_steps) and len(set(by_steps)) == 3
    assert by_sigma == sorted(by_sigma, reverse=True) and len(set(by_sigma)) == 3


def test_edge_cases_no_steps_and_no_noise():
    assert epsilon_spent([], 1e-5, "rdp") == 0.0
    assert math.isinf(epsilon_spent([(0.0, 0.01, 10)], 1e-5, "rdp"))


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_calibration_lands_at_or_below_the_target(accountant):
    for target in (1.0, 8.0):
        sigma = calibrate_noise(target, 1e-5, sample_rate=0.02, steps=500, accountant=accountant)
        spent = epsilon_spent([(sigma, 0.02, 500)], 1e-5, accountant)
        assert target - 0.1 < spent <= target, (target, sigma, spent)


def test_history_merges_identical_steps():
    history: list[tuple[float, float, int]] = []
    for _ in range(3):
        accountant_step(history, 1.0, 0.1)
    accountant_step(history, 2.0, 0.1)
    assert history == [(1.0, 0.1, 3), (2.0, 0.1, 1)]
    assert epsilon_spent(history, 1e-5, "rdp") > epsilon_spent([(1.0, 0.1, 3)], 1e-5, "rdp")


def test_report_lands_in_its_file_the_manifest_and_report_html(tmp_path):
    from tunesmith.evaluate.run_report import render_run_report

    run = RunDir.create(tmp_path, {"train": {"strategy": "dp"}}, run_id="dp", seed=0)
    report = privacy_report([(0.9, 0.05, 120)], delta=1e-5, noise_multiplier=0.9, sample_rate=0.05,
                            accountant="rdp", max_grad_norm=1.0, target_epsilon=8.0)
    record_privacy(run, report)
    saved = json.loads((run.path / "privacy_report.json").read_text())
    assert tuple(saved) == REPORT_KEYS and saved["steps"] == 120
    assert saved["epsilon"] == pytest.approx(epsilon_spent([(0.9, 0.05, 120)], 1e-5, "rdp"))
    assert json.loads((run.path / "manifest.json").read_text())["privacy"] == saved
    run.finish()
    assert json.loads((run.path / "manifest.json").read_text())["privacy"] == saved, "finish() keeps it"
    page = render_run_report(run.path).read_text()
    assert 'id="privacy"' in page and "Differential privacy" in page and 'href="#privacy"' in page
    assert f"{saved['epsilon']:.3f}" in page and "0.9000" in page and "rdp accountant" in page


def test_report_html_flags_a_run_without_noise(tmp_path):
    from tunesmith.evaluate.run_report import render_run_report

    run = RunDir.create(tmp_path, {}, run_id="nonoise")
    record_privacy(run, privacy_report([(0.0, 0.05, 10)], delta=1e-5, noise_multiplier=0.0, sample_rate=0.05,
                                       accountant="rdp", max_grad_norm=1.0, target_epsilon=None))
    assert json.loads((run.path / "privacy_report.json").read_text())["epsilon"] == math.inf
    page = render_run_report(run.path).read_text()
    assert "&infin;" in page and "no privacy guarantee" in page


def test_cached_rdp_equals_opacus_accountant():
    from tunesmith.train.dp_accounting import make_accountant

    history = [(1.1, 0.01, 3_000), (0.7, 0.02, 41)]
    assert epsilon_spent(history, 1e-5, "rdp") == pytest.approx(make_accountant("rdp", history).get_epsilon(1e-5),
                                                                rel=1e-12)
