"""Training: configs, data, the SAIN/IRN objectives and the loop (``sain train``)."""

from .config import ConfigError, TrainConfig, apply_override, load_config
from .data import DataError, PatchDataset
from .objective import Objective
from .trainer import Trainer, TrainingInterrupted, train

__all__ = [
    "TrainConfig",
    "load_config",
    "apply_override",
    "ConfigError",
    "DataError",
    "PatchDataset",
    "Objective",
    "Trainer",
    "TrainingInterrupted",
    "train",
]
