"""The application: AutoFlux's default search spaces and strategy, ``fit``, and the random-search baseline."""

from ._control import RunDirectoryError, install_stop_handlers, restore_handlers
from ._data import (
    data_fingerprint,
    default_epochs,
    default_partitions,
    encode_known_labels,
    prepare_data,
    training_size,
)
from ._fit import fit
from ._progress import ProgressHandler, RunProgress, format_duration
from ._random_search import random_search, search_budget
from ._regression import FixedAffine, MSEFitness, ScaledSquaredError, scale_targets, squared_error
from ._run import initial_population
from ._settings import FitSettings
from ._spaces import (
    CONVENTIONAL_BATCH_SIZE,
    CONVENTIONAL_LEARNING_RATE,
    conv_layer_space,
    conventional_space,
    default_members,
    default_space,
    downsample_space,
    mlp_space,
    rep_fork_res,
    standardise_inputs,
    tabular_space,
)
from ._strategy import (
    SizeGuard,
    candidate_crossover,
    candidate_mutation,
    default_evolution,
    graph_mutation,
)
from ._summary import format_summary, run_rank

__all__ = [
    "CONVENTIONAL_BATCH_SIZE",
    "CONVENTIONAL_LEARNING_RATE",
    "FitSettings",
    "FixedAffine",
    "MSEFitness",
    "ProgressHandler",
    "RunDirectoryError",
    "RunProgress",
    "ScaledSquaredError",
    "SizeGuard",
    "candidate_crossover",
    "candidate_mutation",
    "conv_layer_space",
    "conventional_space",
    "data_fingerprint",
    "default_epochs",
    "default_evolution",
    "default_members",
    "default_partitions",
    "default_space",
    "downsample_space",
    "encode_known_labels",
    "fit",
    "format_duration",
    "format_summary",
    "graph_mutation",
    "initial_population",
    "install_stop_handlers",
    "mlp_space",
    "prepare_data",
    "random_search",
    "rep_fork_res",
    "restore_handlers",
    "run_rank",
    "scale_targets",
    "search_budget",
    "squared_error",
    "standardise_inputs",
    "tabular_space",
    "training_size",
]
