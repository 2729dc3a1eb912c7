"""The engine: train state, jitted data-parallel step, checkpoints, metrics, the loop."""

from genjax.train.checkpoint import CheckpointError, CheckpointStore, tree_digest
from genjax.train.config import (
    Config,
    DataConfig,
    EvalConfig,
    OptimConfig,
    TrainConfig,
    apply_overrides,
)
from genjax.train.method import (
    BaseMethod,
    DataSpec,
    FitMethod,
    Method,
    available_methods,
    get_method,
    register,
)
from genjax.train.state import ModelState, TrainState, apply_gradients

__all__ = [
    "BaseMethod",
    "CheckpointError",
    "CheckpointStore",
    "Config",
    "DataConfig",
    "DataSpec",
    "EvalConfig",
    "FitMethod",
    "Method",
    "ModelState",
    "OptimConfig",
    "TrainConfig",
    "TrainState",
    "apply_gradients",
    "apply_overrides",
    "available_methods",
    "get_method",
    "register",
    "tree_digest",
]
