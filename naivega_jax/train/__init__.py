"""Optimiser specs (optax underneath) and the compile-aware training engine."""

from ._cache import clear_compile_cache, engine_stats, set_jax_cache_clearing, sum_call_stats
from ._engine import TrainResult, choose_driver, precompile_training, train_graph
from ._evaluate import cached_executable, evaluate_accuracy, evaluate_loss, step_memory
from ._optimisers import (
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Momentum,
    NAdam,
    Nesterov,
    Optax,
    Optimiser,
    OptimiserChain,
    RMSProp,
    ScaledSchedule,
    ShieldedOpt,
    WeightDecay,
    map_optimisers,
    merge_optimisers,
    optimiser_from_dict,
)

# For the mutations, the training fitness and autofit, which leave plain optax alone or wrap it; not public API (not
# in __all__).
from ._optimisers import as_optimiser as as_optimiser
from ._optimisers import is_plain_optax as is_plain_optax
from ._xla_cache import compilation_cache_dir, default_compilation_cache_dir, set_compilation_cache

# For ng.autofit.fit, which switches the persistent cache on for a search; not public API (not in __all__).
from ._xla_cache import ensure_default_compilation_cache as ensure_default_compilation_cache

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "Momentum",
    "NAdam",
    "Nesterov",
    "Optax",
    "Optimiser",
    "OptimiserChain",
    "RMSProp",
    "ScaledSchedule",
    "ShieldedOpt",
    "TrainResult",
    "WeightDecay",
    "cached_executable",
    "choose_driver",
    "clear_compile_cache",
    "compilation_cache_dir",
    "default_compilation_cache_dir",
    "engine_stats",
    "evaluate_accuracy",
    "evaluate_loss",
    "map_optimisers",
    "merge_optimisers",
    "optimiser_from_dict",
    "precompile_training",
    "set_compilation_cache",
    "set_jax_cache_clearing",
    "step_memory",
    "sum_call_stats",
    "train_graph",
]
