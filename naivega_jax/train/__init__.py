"""Optimiser specs (optax underneath) and the compile-aware training engine."""

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
    "WeightDecay",
    "map_optimisers",
    "merge_optimisers",
    "optimiser_from_dict",
]
