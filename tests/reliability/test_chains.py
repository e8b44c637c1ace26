"""Property: random chains of mutations AND crossovers, on graphs sampled from randomly built search spaces, never
produce an invalid graph and never modify their inputs.

Each example draws a search space (dense, 2-D conv or 1-D conv; a random stack of plain, repeat, fork and residual
blocks with random widths, kernels and activations; a shielded classifier head of random size), two graphs from
it, and a chain of 1 to 3 steps. A step is either a mutation chain (one to three leaf mutations, each wrapped in
``VertexMutation(MutationProbability(leaf, p))`` and composed with ``MutationChain``) applied to both graphs, or a
``VertexCrossover(MutationProbability(CrossoverSwap(), p))`` of the pair. After every step each result must pass
``ng.validate_graph``, keep its output shapes and its shielded output, and every input graph must be bitwise what it
was before the step (params and state, compared as host copies, and the spec). At the end each graph is traced
(``jax.eval_shape``) on a batch of its input shape.

The default run draws 500 examples (derandomised, so CI is reproducible); ``-m slow`` adds 2000 random ones:
``.venv/bin/python -m pytest -q -m slow tests/reliability/test_chains.py``
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import naivega_jax as ng

ACTS = ("identity", "relu", "tanh", "elu")
KINDS = {"dense": (5,), "conv": (6, 6, 2), "conv1d": (7, 2)}


@st.composite
def layer_spaces(draw, kind: str):
    lo = draw(st.integers(1, 4))
    sizes = range(lo, lo + draw(st.integers(1, 5)))
    acts = draw(st.lists(st.sampled_from(ACTS), min_size=1, max_size=3, unique=True))
    if kind == "dense":
        return ng.VertexSpace(ng.DenseSpace(sizes, acts))
    kernels = draw(st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=2, unique=True))
    return ng.VertexSpace(ng.ConvSpace(sizes, kernels, activations=acts))


@st.composite
def blocks(draw, kind: str):
    layer = draw(layer_spaces(kind))
    shape = draw(st.sampled_from(["plain", "repeat", "fork", "residual", "residual-fork"]))
    if shape == "plain":
        return layer
    if shape == "repeat":
        return ng.RepeatArchSpace(layer, range(0, draw(st.integers(1, 3)) + 1))
    if shape == "fork":
        return ng.ForkArchSpace(layer, range(1, draw(st.integers(1, 3)) + 1))
    if shape == "residual":
        return ng.ResidualArchSpace(ng.RepeatArchSpace(layer, range(1, draw(st.integers(1, 2)) + 1)))
    return ng.ResidualArchSpace(ng.ForkArchSpace(layer, range(1, 3)))


@st.composite
def spaces(draw):
    """A random classifier space and its input shape."""
    kind = draw(st.sampled_from(sorted(KINDS)))
    head = ng.VertexSpace(ng.DenseSpace(draw(st.integers(2, 4)), "identity"), shielded=True)
    parts = draw(st.lists(blocks(kind), min_size=1, max_size=3))
    if kind == "conv":
        if draw(st.booleans()):
            parts.append(ng.VertexSpace(ng.BatchNormSpace(["relu", "identity"])))
        if draw(st.booleans()):
            parts.append(ng.VertexSpace(ng.PoolSpace(2, kinds="max")))
        parts.append(draw(blocks(kind)))
    if kind != "dense":
        parts.append(ng.GlobalPoolSpace())
        parts.extend(draw(st.lists(blocks("dense"), max_size=1)))
    return ng.ArchSpaceChain(*parts, head), KINDS[kind]


LEAVES = (
    ng.NoutMutation(-0.5, 0.5),
    ng.AddVertexMutation(ng.ArchSpace(ng.DenseSpace(range(1, 6), "relu"))),
    ng.AddVertexMutation(ng.ArchSpace(ng.ConvSpace(range(1, 5), [1, 3]))),
    ng.AddVertexMutation(ng.ForkArchSpace(ng.VertexSpace(ng.DenseSpace(range(1, 4), "relu")), 2)),
    ng.AddVertexMutation(ng.ResidualArchSpace(ng.VertexSpace(ng.ConvSpace(range(1, 4), [3])))),
    ng.RemoveVertexMutation(),
    ng.AddEdgeMutation(0.5),
    ng.RemoveEdgeMutation(),
    ng.KernelSizeMutation(2),
    ng.ActivationFunctionMutation("relu", "elu", "tanh"),
)
# per selected vertex: with 1.0 every vertex of a graph gets an AddVertexMutation and graphs double in a step
MUTATION_PROBABILITIES = (0.1, 0.3, 0.6)
CROSSOVER_PROBABILITIES = (0.3, 0.7, 1.0)

steps = st.one_of(
    st.tuples(
        st.just("mutate"),
        st.lists(
            st.tuples(st.integers(0, len(LEAVES) - 1), st.sampled_from(MUTATION_PROBABILITIES)), min_size=1, max_size=3
        ),
    ),
    st.tuples(st.just("crossover"), st.sampled_from(CROSSOVER_PROBABILITIES)),
)
examples = st.tuples(spaces(), st.integers(0, 2**31 - 1), st.lists(steps, min_size=1, max_size=3))


def _snapshot(graph: ng.Graph):
    return graph.spec, jax.tree_util.tree_map(lambda a: np.array(a, copy=True), (graph.params, graph.state))


def _unchanged(graph: ng.Graph, snapshot) -> bool:
    spec, (params, state) = snapshot
    before, tree = jax.tree_util.tree_flatten((params, state))
    after, tree2 = jax.tree_util.tree_flatten((graph.params, graph.state))
    return (
        graph.spec == spec
        and tree == tree2
        and all(
            a.dtype == np.asarray(b).dtype and a.tobytes() == np.asarray(b).tobytes()
            for a, b in zip(before, after, strict=True)
        )
    )


def _check(new: ng.Graph, old: ng.Graph) -> None:
    ng.validate_graph(new)
    assert new.input_names == old.input_names
    assert [new.shape(o) for o in new.output_names] == [old.shape(o) for o in old.output_names]
    assert all(new.spec[o].shield == old.spec[o].shield for o in new.output_names)


def run_chain(space, in_shape, seed, chain) -> list[str]:
    key = jax.random.key(seed)
    pair = tuple(
        ng.sample_graph(jax.random.fold_in(key, i), space, ng.input_vertex("in", shape=in_shape), name=name)
        for i, name in enumerate(("a", "b"))
    )
    done = []
    for i, step in enumerate(chain):
        k = jax.random.fold_in(key, 100 + i)
        snapshots = [_snapshot(g) for g in pair]
        if step[0] == "mutate":
            m = ng.MutationChain(*(ng.VertexMutation(ng.MutationProbability(LEAVES[j], p)) for j, p in step[1]))
            new = tuple(m(jax.random.fold_in(k, j), g) for j, g in enumerate(pair))
        else:
            new = ng.VertexCrossover(ng.MutationProbability(ng.CrossoverSwap(), step[1]))(k, pair)
        for g, s in zip(pair, snapshots, strict=True):
            assert _unchanged(g, s), f"step {i} ({step}) modified its input"
        for n, g in zip(new, pair, strict=True):
            _check(n, g)
        done.append(step[0] if all(n is g for n, g in zip(new, pair)) else f"{step[0]}*")
        pair = new
    for g in pair:
        x = jax.ShapeDtypeStruct((2, *in_shape), jnp.float32)
        out = jax.eval_shape(g, x)
        assert out.shape == (2, *g.shape(g.output_names[0]))
    return done


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(examples)
def test_random_mutation_and_crossover_chains(example):
    (space, in_shape), seed, chain = example
    run_chain(space, in_shape, seed, chain)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(examples)
def test_random_mutation_and_crossover_chains_2000(example):
    (space, in_shape), seed, chain = example
    run_chain(space, in_shape, seed, chain)


def test_chains_change_graphs_and_cross_over():
    """The property is not vacuous: over a fixed set of chains, mutations and crossovers do change graphs."""
    space = ng.ArchSpaceChain(
        ng.RepeatArchSpace(ng.VertexSpace(ng.DenseSpace(range(2, 6), ["relu", "tanh"])), range(2, 4)),
        ng.VertexSpace(ng.DenseSpace(3, "identity"), shielded=True),
    )
    changed = [
        run_chain(space, (5,), seed, [("mutate", [(0, 1.0), (1, 1.0)]), ("crossover", 1.0)]) for seed in range(4)
    ]
    assert all(c == ["mutate*", "crossover*"] for c in changed), changed
