"""Typed run configuration: one dataclass per stage, YAML loading, dotted overrides. Imports no torch."""

from tunesmith.config.loader import config_hash, config_to_dict, dump_config, load_config
from tunesmith.config.schema import (
    AdapterConfig,
    Config,
    DataConfig,
    EncodeConfig,
    EvalConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)

__all__ = [
    "AdapterConfig",
    "Config",
    "DataConfig",
    "EncodeConfig",
    "EvalConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "config_hash",
    "config_to_dict",
    "dump_config",
    "load_config",
]
