"""Mutations and crossover of graphs, optimisers and batch sizes, and their composable wrappers."""

from ._base import TARGETS as TARGETS  # the candidate fields a mutation may target (for evolution)
from ._base import Mutation, mutation_leaves, record_events
from ._batchsize import BatchSizeCrossover, TrainBatchSizeMutation
from ._crossover import CrossoverSwap, VertexCrossover
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
from ._protocols import Crossover, FieldMutation, GraphLevelMutation, VertexLevelMutation
from ._segments import DefaultPairGen, default_pairgen, separable_from
from ._shield import AllVertices, FilterMutationAllowed, allow_mutation
from ._structure import (
    AddEdgeMutation,
    AddVertexMutation,
    MergeFun,
    RandomConsumers,
    RemoveEdgeMutation,
    RemoveVertexMutation,
)
from ._vertex import VertexMutation

__all__ = [
    "ActivationFunctionMutation",
    "AddEdgeMutation",
    "AddOptimiserMutation",
    "AddVertexMutation",
    "AllVertices",
    "BatchSizeCrossover",
    "Crossover",
    "CrossoverSwap",
    "DefaultPairGen",
    "FieldMutation",
    "FilterMutationAllowed",
    "GraphLevelMutation",
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
    "RandomConsumers",
    "RecordMutation",
    "RemoveEdgeMutation",
    "RemoveVertexMutation",
    "TrainBatchSizeMutation",
    "VertexCrossover",
    "VertexLevelMutation",
    "VertexMutation",
    "WeightedMutationProbability",
    "allow_mutation",
    "default_pairgen",
    "mutation_leaves",
    "record_events",
    "separable_from",
]
