"""Candidates, fitness functions, selection strategies, the population and evolve."""

from ._candidate import Candidate
from ._fitness import (
    AccuracyFitness,
    AccuracyVsSize,
    AggFitness,
    EwmaFitness,
    LogFitness,
    MapFitness,
    SizeFitness,
    TimeFitness,
    fitness_message,
    sizevs,
)
from ._map_candidate import MapCandidate, candidate_diff, describe_mutation, graph_diff
from ._population import Population, evaluate, evolve
from ._protocols import Callback, Evolution, Executor, Fitness, PrecompilingFitness
from ._strategies import (
    AfterEvolution,
    CombinedEvolution,
    EliteSelection,
    EvolutionChain,
    EvolveCandidates,
    NoOpEvolution,
    PairCandidates,
    ShuffleCandidates,
    SusSelection,
    TournamentSelection,
)
from ._train_fitness import TrainAccuracyFitness, TrainThenFitness, learning_rate_plan, part_size

__all__ = [
    "AccuracyFitness",
    "AccuracyVsSize",
    "AfterEvolution",
    "AggFitness",
    "Callback",
    "Candidate",
    "CombinedEvolution",
    "EliteSelection",
    "Evolution",
    "EvolutionChain",
    "EvolveCandidates",
    "EwmaFitness",
    "Executor",
    "Fitness",
    "LogFitness",
    "MapCandidate",
    "MapFitness",
    "NoOpEvolution",
    "PairCandidates",
    "Population",
    "PrecompilingFitness",
    "ShuffleCandidates",
    "SizeFitness",
    "SusSelection",
    "TimeFitness",
    "TournamentSelection",
    "TrainAccuracyFitness",
    "TrainThenFitness",
    "candidate_diff",
    "describe_mutation",
    "evaluate",
    "evolve",
    "fitness_message",
    "graph_diff",
    "learning_rate_plan",
    "part_size",
    "sizevs",
]
