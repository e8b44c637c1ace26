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
from ._graph_ops import ActivationFunctionMutation, KernelSizeMutation
from ._nout import NoutMutation
from ._optimiser import (
    AddOptimiserMutation,
    LearningRateCrossover,
    LearningRateMutation,
    OptimiserCrossover,
    OptimiserMutation,
)
from ._shield import AllVertices, FilterMutationAllowed, allow_mutation
from ._structure import AddEdgeMutation, AddVertexMutation, MergeFun, RemoveEdgeMutation, RemoveVertexMutation
from ._vertex import VertexMutation

__all__ = [
    "ActivationFunctionMutation",
    "AddEdgeMutation",
    "AddOptimiserMutation",
    "AddVertexMutation",
    "AllVertices",
    "BatchSizeCrossover",
    "FilterMutationAllowed",
    "HighUtilityMutationProbability",
    "KernelSizeMutation",
    "LearningRateCrossover",
    "LearningRateMutation",
    "LogMutation",
    "LowUtilityMutationProbability",
    "MergeFun",
    "Mutation",
    "MutationChain",
    "MutationFilter",
    "MutationProbability",
    "MutationRecord",
    "NoutMutation",
    "OptimiserCrossover",
    "OptimiserMutation",
    "RecordMutation",
    "RemoveEdgeMutation",
    "RemoveVertexMutation",
    "TrainBatchSizeMutation",
    "VertexMutation",
    "WeightedMutationProbability",
    "allow_mutation",
    "mutation_leaves",
    "record_events",
]
