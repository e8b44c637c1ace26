"""Property: random chains of graph mutations on random graphs always give a valid graph of the same output shape.

The default run draws 100 sequences (derandomised, so it is reproducible); the slow run draws 500.
"""

import jax
import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutation_helpers import host_copy, tree_equal

import naivega_jax as ng

DENSE = ng.VertexSpace(ng.DenseSpace(range(1, 9), ["relu", "identity", "tanh"]))
CONV = ng.VertexSpace(ng.ConvSpace(range(1, 7), [1, 3], activations=["relu", "identity"]))
BN = ng.VertexSpace(ng.BatchNormSpace(["relu", "identity"]))
POOL = ng.VertexSpace(ng.PoolSpace(2, kinds="max"))
OUT = ng.VertexSpace(ng.DenseSpace(3, "identity"), shielded=True)


def _block(layer):
    return ng.ArchSpaceChain(
        ng.RepeatArchSpace(layer, range(0, 3)),
        ng.ForkArchSpace(layer, range(1, 4)),
        ng.ResidualArchSpace(ng.RepeatArchSpace(layer, range(1, 3))),
    )


SPACES = {
    "dense": (ng.ArchSpaceChain(_block(DENSE), OUT), (5,)),
    "conv": (
        ng.ArchSpaceChain(_block(CONV), BN, POOL, _block(CONV), ng.GlobalPoolSpace(), _block(DENSE), OUT),
        (8, 8, 3),
    ),
    "conv1d": (ng.ArchSpaceChain(_block(CONV), ng.GlobalPoolSpace(), OUT), (9, 2)),
}

LEAVES = [
    ng.NoutMutation(-0.5, 0.5),
    ng.AddVertexMutation(ng.ArchSpace(ng.DenseSpace(range(1, 6), "relu"))),
    ng.AddVertexMutation(ng.ArchSpace(ng.ConvSpace(range(1, 6), [1, 3]))),
    ng.AddVertexMutation(ng.ForkArchSpace(DENSE, 2)),
    ng.AddVertexMutation(ng.ResidualArchSpace(CONV)),
    ng.AddVertexMutation(ng.ArchSpace(ng.DenseSpace(range(1, 6), "relu")), ng.mutation.RandomConsumers(0.5)),
    ng.AddVertexMutation(ng.ResidualArchSpace(CONV), ng.mutation.RandomConsumers(0.5)),
    ng.RemoveVertexMutation(),
    ng.AddEdgeMutation(0.5),
    ng.RemoveEdgeMutation(),
    ng.KernelSizeMutation(2),
    ng.ActivationFunctionMutation("relu", "elu"),
]


def _check_sequence(kind, seed, picks, probability):
    space, shape = SPACES[kind]
    key = jax.random.key(seed)
    graph = ng.sample_graph(key, space, ng.input_vertex("in", shape=shape))
    x = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
    out_shape = jax.eval_shape(graph, x).shape
    for i, pick in enumerate(picks):
        before = host_copy((graph.params, graph.state))
        m = ng.VertexMutation(ng.MutationProbability(LEAVES[pick], probability))
        new = m(jax.random.fold_in(key, i), graph)
        assert tree_equal(before, (graph.params, graph.state))
        ng.validate_graph(new)
        assert tuple(new.shape(o) for o in new.output_names) == tuple(graph.shape(o) for o in graph.output_names)
        assert all(new.spec[o].shield == () for o in new.output_names)
        graph = new
    assert jax.eval_shape(graph, x).shape == out_shape  # traces every op (no compile)


sequences = st.tuples(
    st.sampled_from(sorted(SPACES)),
    st.integers(0, 2**31 - 1),
    st.lists(st.integers(0, len(LEAVES) - 1), min_size=1, max_size=4),
    st.sampled_from([0.3, 0.6, 1.0]),
)


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(sequences)
def test_random_mutation_sequences(seq):
    _check_sequence(*seq)


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequences)
def test_random_mutation_sequences_500(seq):
    _check_sequence(*seq)
