"""The `privacy:` block: switching a plain run to DP-SGD, and the errors that name the fields."""

from __future__ import annotations

import pytest

from tunesmith.config import load_config
from tunesmith.core.errors import ConfigError


def test_a_budget_switches_a_plain_run_to_dp(capsys):
    cfg = load_config(None, ["--privacy.target_epsilon=8"])
    assert cfg.train.strategy == "dp" and cfg.privacy.target_epsilon == 8.0
    assert "train.strategy is now 'dp'" in capsys.readouterr().err
    cfg = load_config(None, ["--privacy.noise_multiplier=1.2"])
    assert cfg.train.strategy == "dp"
    assert load_config(None, []).train.strategy == "plain"


def test_dp_without_budget_or_noise_names_both_fields():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["--train.strategy=dp"])
    assert "privacy.target_epsilon" in str(err.value) and "privacy.noise_multiplier" in str(err.value)


def test_budget_and_noise_together_is_an_error():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["--privacy.target_epsilon=8", "--privacy.noise_multiplier=1.0"])
    assert "privacy.noise_multiplier" in str(err.value) and "keep one" in str(err.value)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("--privacy.target_epsilon=0", "privacy.target_epsilon"),
        ("--privacy.delta=1.5", "privacy.delta"),
        ("--privacy.max_grad_norm=0", "privacy.max_grad_norm"),
        ("--train.gradient_checkpointing=true", "train.gradient_checkpointing"),
        ("--privacy.accountant=gdp", "privacy.accountant"),
    ],
)
def test_bad_privacy_settings_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(None, ["--privacy.target_epsilon=8", override] if "target_epsilon" not in override
                    else [override])


def test_noise_off_is_allowed_for_audits():
    assert load_config(None, ["--privacy.noise_multiplier=0"]).privacy.noise_multiplier == 0.0
