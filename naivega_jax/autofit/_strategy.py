"""AutoFlux's default evolution: 2 elites + tournament selection, crossover then mutation, as NaiveGAflux's AutoFlux."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import jax

from ..evolution import (
    CombinedEvolution,
    EliteSelection,
    EvolutionChain,
    EvolveCandidates,
    MapCandidate,
    PairCandidates,
    TournamentSelection,
)
from ..graph import Conv, Graph, nparams
from ..mutation import (
    ActivationFunctionMutation,
    AddEdgeMutation,
    AddVertexMutation,
    BatchSizeCrossover,
    CrossoverSwap,
    DefaultPairGen,
    HighUtilityMutationProbability,
    KernelSizeMutation,
    LearningRateCrossover,
    LearningRateMutation,
    LowUtilityMutationProbability,
    Mutation,
    MutationChain,
    MutationFilter,
    MutationProbability,
    NoutMutation,
    OptimiserCrossover,
    OptimiserMutation,
    RandomConsumers,
    RemoveEdgeMutation,
    RemoveVertexMutation,
    TrainBatchSizeMutation,
    VertexCrossover,
    VertexMutation,
)
from ..search import ConditionalArchSpace, DenseSpace, VertexSpace, vertex_shape
from ..train import SGD, AdaGrad, Adam, Momentum, NAdam, Nesterov
from ._spaces import (
    ACTIVATIONS,
    _pow2,
    conv_layer_space,
    downsample_space,
    rep_fork_res,
)

#: upstream's ``isbig``: above this many parameters only mutations that do not grow the model are used
SIZE_LIMIT = 200_000_000
BATCH_SIZES = tuple(2**i for i in range(3, 11))


def _is_feature_map(v) -> bool:
    return len(vertex_shape(v)) > 1


def _odd_kernel(graph: Graph, name: str) -> bool:
    op = graph.op(name)
    # the spec's ops are resolved: kernel_size is a tuple
    return isinstance(op, Conv) and all(k % 2 == 1 for k in cast(tuple[int, ...], op.kernel_size))


def _feature_map_size(graph: Graph, name: str) -> tuple[int, ...]:
    """Largest sensible kernel: the input feature map's spatial size, made odd (upstream's maxkernelsize)."""
    (inp,) = graph.inputs(name)
    return tuple(s if s % 2 == 1 else s - 1 for s in graph.shape(inp)[:-1])


def _can_downsample(graph: Graph, name: str) -> bool:
    """Conv-type vertices whose feature map, and every feature map after them, stays >= 2 after halving."""
    shape = graph.shape(name)
    if len(shape) < 2 or not graph.spec.is_mutable(name):
        return False
    smallest = min(min(graph.shape(v)[:-1]) for v in graph.vertex_names if len(graph.shape(v)) > 1)
    return min(shape[:-1]) >= 4 and smallest >= 2


def _more_than_five_vertices(graph: Graph, name: str) -> bool:
    return len(graph.vertex_names) > 5


@dataclasses.dataclass(frozen=True)
class SizeGuard(Mutation):
    """Applies ``small`` to graphs of at most ``limit`` parameters and ``big`` (non-growing) to larger ones.

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.autofit import SizeGuard
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(4), inp))
        >>> relu = ng.VertexMutation(ng.ActivationFunctionMutation("relu"))
        >>> elu = ng.VertexMutation(ng.ActivationFunctionMutation("elu"))
        >>> SizeGuard(relu, elu, limit=10)(jax.random.key(1), g).op("d").activation  # 16 params > 10
        'elu'
        >>> SizeGuard(relu, elu, limit=100)(jax.random.key(1), g).op("d").activation
        'relu'
    """

    small: Any
    big: Any
    limit: int = SIZE_LIMIT

    def wrapped(self):
        return (self.small, self.big)

    def __call__(self, key: jax.Array, graph: Graph) -> Graph:
        return (self.big if nparams(graph) > self.limit else self.small)(key, graph)


def _kernel_space(rank: int, deltas: tuple[int, ...]):
    from ..search import ParSpace

    return ParSpace(*([list(deltas)] * rank))


def graph_mutation(in_shape: tuple[int, ...], *, scale: float = 0.25) -> Mutation:
    """AutoFlux's graph mutation: per-vertex probabilities as upstream, with the size guard.

    Growing chain: remove vertex (low utility, 0.01, graphs of > 5 vertices), nout ±20% (0.05) and -20..0% (low
    utility, 0.05), kernel ±2 (0.02) and -2 (0.02) on odd kernels up to the feature-map size, remove edge (0.02),
    add edge (high utility, 0.02), add a downsampling (0.01), add a vertex (high utility, 0.005); then activation
    (low utility, 0.005). Above ``SIZE_LIMIT`` parameters the growing mutations are left out.

    Example:
        >>> from naivega_jax.autofit import graph_mutation
        >>> graph_mutation((8, 8, 1)).target
        'graph'
    """
    rank = len(in_shape) - 1
    vm = VertexMutation
    add_space = ConditionalArchSpace(
        _is_feature_map,
        rep_fork_res(conv_layer_space(_pow2(4, 9, scale), [1, 3, 5])),
        VertexSpace(DenseSpace(_pow2(4, 9, scale), ACTIVATIONS)),
    )
    remove = vm(
        MutationFilter(
            _more_than_five_vertices,
            LowUtilityMutationProbability(RemoveVertexMutation(), 0.01),
        )
    )
    nout = vm(MutationProbability(NoutMutation(-0.2, 0.2), 0.05))
    nout_down = vm(LowUtilityMutationProbability(NoutMutation(-0.2, 0.0), 0.05))
    # AutoFlux rewires a random half of the vertex's readers (at least one) to the new vertex
    add_vertex = vm(HighUtilityMutationProbability(AddVertexMutation(add_space, RandomConsumers(0.5)), 0.005))
    add_edge = vm(HighUtilityMutationProbability(AddEdgeMutation(0.1), 0.02))
    remove_edge = vm(MutationProbability(RemoveEdgeMutation(), 0.02))
    activation = vm(LowUtilityMutationProbability(ActivationFunctionMutation(*ACTIVATIONS), 0.005))
    chain: list[Mutation] = [remove, nout, nout_down]
    shrink: list[Mutation] = [remove, nout_down]
    if rank >= 1:
        kernel = vm(
            MutationFilter(
                _odd_kernel,
                MutationProbability(
                    KernelSizeMutation(_kernel_space(rank, (-2, 2)), maxsize=_feature_map_size),
                    0.02,
                ),
            )
        )
        kernel_down = vm(
            MutationFilter(
                _odd_kernel,
                MutationProbability(KernelSizeMutation(_kernel_space(rank, (-2,)), maxsize=None), 0.02),
            )
        )
        downsample = vm(
            MutationFilter(
                _can_downsample,
                MutationProbability(
                    AddVertexMutation(downsample_space(_pow2(4, 9, scale)), weight_init="default"),
                    0.01,
                ),
            )
        )
        chain += [kernel, kernel_down, remove_edge, add_edge, downsample, add_vertex]
        shrink += [kernel_down, remove_edge, downsample]
    else:
        chain += [remove_edge, add_edge, add_vertex]
        shrink += [remove_edge]
    return MutationChain(SizeGuard(MutationChain(*chain), MutationChain(*shrink)), activation)


def candidate_mutation(in_shape: tuple[int, ...], *, pmutate: float = 0.8) -> MapCandidate:
    """``MapCandidate`` of the graph mutation (probability ``pmutate``), the optimiser and batch-size mutations.

    Optimiser: the learning rate is always nudged (±15%), the type re-drawn with probability 0.1 from upstream's six.
    Batch size: ±20% on the powers of two 8..1024 with probability 0.1.

    Example:
        >>> from naivega_jax.autofit import candidate_mutation
        >>> [m.target for m in candidate_mutation((8, 8, 1)).mutations]
        ['graph', 'optimiser', 'batch_size']
    """
    optimiser = MutationChain(
        LearningRateMutation(),
        MutationProbability(OptimiserMutation([SGD, Momentum, Nesterov, Adam, NAdam, AdaGrad]), 0.1),
    )
    batch = MutationProbability(TrainBatchSizeMutation(-0.2, 0.2, quantize_to=BATCH_SIZES), 0.1)
    return MapCandidate(MutationProbability(graph_mutation(in_shape), pmutate), optimiser, batch)


def candidate_crossover(*, pcrossover: float = 0.3, pswap: float = 0.05) -> MapCandidate:
    """``MapCandidate`` of upstream's candidate crossover: the graph crossover with probability ``pcrossover``, the
    optimiser crossovers (learning rates swapped per member with probability 0.4, rules with 0.3) and the
    batch-size crossover (0.2).

    The graph crossover is upstream's ``VertexCrossover(MutationProbability(CrossoverSwap(0.05), 0.05), 0.05)``:
    vertices of the two graphs are paired by relative position (noise 0.05) and each pair swaps the segments ending
    there with probability ``pswap``, weights and all.

    Example:
        >>> from naivega_jax.autofit import candidate_crossover
        >>> [m.target for m in candidate_crossover().mutations]
        ['graph', 'optimiser', 'batch_size']
    """
    graph = MutationProbability(
        VertexCrossover(
            MutationProbability(CrossoverSwap.with_deviation(0.05), pswap),
            pairgen=DefaultPairGen(0.05),
        ),
        pcrossover,
    )
    optimiser = MutationChain(
        LearningRateCrossover(MutationProbability(LearningRateCrossover(), 0.4)),
        OptimiserCrossover(MutationProbability(OptimiserCrossover(), 0.3)),
    )
    return MapCandidate(graph, optimiser, MutationProbability(BatchSizeCrossover(), 0.2))


def default_evolution(
    population_size: int,
    in_shape: tuple[int, ...] = (1, 1),
    *,
    nelites: int = 2,
    pcrossover: float = 0.3,
    pmutate: float = 0.8,
    pswap: float = 0.05,
):
    """Upstream's ``EliteAndTournamentSelection``: ``nelites`` elites plus tournament (k=2, p=1) winners that are
    crossed over in pairs (probability ``pcrossover``; ``pswap`` per paired vertex, see ``candidate_crossover``)
    then mutated (probability ``pmutate``).

    Example:
        >>> from naivega_jax.autofit import default_evolution
        >>> type(default_evolution(10, (40, 1))).__name__
        'CombinedEvolution'
    """
    if population_size <= nelites:
        raise ValueError(f"default_evolution: population_size ({population_size}) must exceed nelites ({nelites})")
    crossmutate = EvolutionChain(
        PairCandidates(EvolveCandidates(candidate_crossover(pcrossover=pcrossover, pswap=pswap))),
        EvolveCandidates(candidate_mutation(in_shape, pmutate=pmutate)),
    )
    return CombinedEvolution(
        EliteSelection(nelites),
        TournamentSelection(population_size - nelites, 2, 1.0, crossmutate),
    )
