"""Mutations and crossover of graphs, optimisers and batch sizes, and their composable wrappers."""

from ._base import Mutation, mutation_leaves, record_events
from ._batchsize import BatchSizeCrossover, TrainBatchSizeMutation
from ._generic import (
    HighUtilityMutationProbability,
    LogMutation,
    LowUtilityMutationProbability,
    MutationChain,
    MutationFilter,
    MutationProbability,
    MutationRecord,
    RecordMutation,
    WeightedMutationProbability,
)
from ._graph_ops import ActivationFunctionMutation
from ._optimiser import (
    AddOptimiserMutation,
    LearningRateCrossover,
    LearningRateMutation,
    OptimiserCrossover,
    OptimiserMutation,
)
from ._shield import AllVertices, FilterMutationAllowed, allow_mutation
from ._vertex import VertexMutation

__all__ = [
    "ActivationFunctionMutation",
    "AddOptimiserMutation",
    "AllVertices",
    "BatchSizeCrossover",
    "FilterMutationAllowed",
    "HighUtilityMutationProbability",
    "LearningRateCrossover",
    "LearningRateMutation",
    "LogMutation",
    "LowUtilityMutationProbability",
    "Mutation",
    "MutationChain",
    "MutationFilter",
    "MutationProbability",
    "MutationRecord",
    "OptimiserCrossover",
    "OptimiserMutation",
    "RecordMutation",
    "TrainBatchSizeMutation",
    "VertexMutation",
    "WeightedMutationProbability",
    "allow_mutation",
    "mutation_leaves",
    "record_events",
]
