"""Optimiser specs (optax underneath) and the compile-aware training engine."""

from ._cache import clear_compile_cache, engine_stats
from ._engine import TrainResult, choose_driver, evaluate_accuracy, step_memory, train_graph
from ._optimisers import (
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Momentum,
    NAdam,
    Nesterov,
    Optimiser,
    OptimiserChain,
    RMSProp,
    ShieldedOpt,
    WeightDecay,
    map_optimisers,
    merge_optimisers,
    optimiser_from_dict,
)

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "Momentum",
    "NAdam",
    "Nesterov",
    "Optimiser",
    "OptimiserChain",
    "RMSProp",
    "ShieldedOpt",
    "TrainResult",
    "WeightDecay",
    "choose_driver",
    "clear_compile_cache",
    "engine_stats",
    "evaluate_accuracy",
    "map_optimisers",
    "merge_optimisers",
    "optimiser_from_dict",
    "step_memory",
    "train_graph",
]
