"""Property tests over random nested search spaces."""

import os

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import naivega_jax as ng
from naivega_jax.graph._validate import validate_graph

# NAIVEGA_SEARCH_EXAMPLES=300 for a longer run.
SETTINGS = settings(
    max_examples=int(os.environ.get("NAIVEGA_SEARCH_EXAMPLES", "15")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

sizes = st.lists(st.integers(1, 6), min_size=1, max_size=3)
counts = st.lists(st.integers(0, 2), min_size=1, max_size=2)
acts = st.lists(st.sampled_from(["identity", "relu", "elu"]), min_size=1, max_size=2)
nonempty = st.lists(st.integers(1, 3), min_size=1, max_size=2)


def combinators(children, *, counts=counts, paths=counts, residual=True, noop=True):
    options = [
        st.builds(ng.RepeatArchSpace, children, counts),
        st.builds(lambda ss: ng.ArchSpaceChain(*ss), st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda ss: ng.ArchSpace(*ss), st.lists(children, min_size=1, max_size=3)),
        st.builds(ng.ForkArchSpace, children, paths),
    ]
    if residual:
        options.append(st.builds(ng.ResidualArchSpace, children))
    if noop:
        options.append(st.just(ng.search.NoOpArchSpace()))
    return st.one_of(options)


def honouring(sized, same_size=None):
    """Spaces that output ``outsize`` neurons when asked: any nesting of leaves that do, without empty repeats or
    forks; residuals (which keep the input's size) and ``same_size`` leaves only where ``outsize == nout(in)``,
    that is outside forks of several paths (as upstream, where a residual in a fork is an identity only with one
    path)."""
    inside = st.recursive(
        sized, lambda c: combinators(c, counts=nonempty, paths=nonempty, residual=False, noop=False), max_leaves=4
    )
    leaves = inside if same_size is None else inside | same_size
    return st.recursive(leaves, lambda c: combinators(c, counts=nonempty, paths=st.just(1), noop=False), max_leaves=3)


def free(leaf, sized, same_size):
    """Any nesting, sampled without outsize: empty repeats and forks, no-ops; residuals over honouring spaces."""
    residual = st.builds(ng.ResidualArchSpace, honouring(sized, same_size))
    return st.recursive(leaf | residual, lambda c: combinators(c, residual=False), max_leaves=5)


dense = st.builds(lambda n, a: ng.VertexSpace(ng.DenseSpace(n, a)), sizes, acts)
batchnorm = st.builds(lambda a: ng.VertexSpace(ng.BatchNormSpace(a)), acts)
conv = st.builds(
    lambda n, k, a, d: ng.VertexSpace(ng.ConvSpace(n, k, a, dilations=d)),
    sizes,
    st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=2),
    acts,
    st.sampled_from([1, 2]),
)
pool = st.just(ng.VertexSpace(ng.PoolSpace([1, 3], strides=1, paddings="SAME")))
dense_spaces = free(dense | batchnorm, dense, batchnorm)
conv_spaces = free(
    conv | batchnorm | pool,
    conv | st.builds(lambda pre, c: ng.ArchSpaceChain(pre, c), batchnorm | pool, conv),
    batchnorm | pool,
)
down = ng.ArchSpace(ng.PoolSpace(2), ng.ConvSpace([2, 3], [2, 3], strides=2, paddings=["SAME", "VALID", 0]))


@SETTINGS
@given(dense_spaces, st.integers(0, 2**31 - 1))
def test_random_dense_spaces_sample_valid_graphs(space, seed):
    full = ng.ArchSpaceChain(space, ng.VertexSpace(ng.DenseSpace(3), shielded=True))
    g = ng.sample_graph(jax.random.key(seed), full, ng.input_vertex("in", shape=(5,)))
    validate_graph(g)
    assert jax.eval_shape(g, jax.ShapeDtypeStruct((2, 5), jnp.float32)).shape == (2, 3)
    again = ng.sample_graph(jax.random.key(seed), full, ng.input_vertex("in", shape=(5,)))
    assert again.spec == g.spec
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(again)))


@SETTINGS
@given(conv_spaces, conv_spaces, st.integers(0, 2**31 - 1), st.sampled_from([(9, 8), (12, 13)]))
def test_random_conv_spaces_sample_valid_graphs_whose_traces_match_their_shapes(s1, s2, seed, spatial):
    full = ng.ArchSpaceChain(s1, down, s2, ng.GlobalPoolSpace(), ng.DenseSpace(4))
    g = ng.sample_graph(jax.random.key(seed), full, ng.input_vertex("in", shape=(*spatial, 2)))
    validate_graph(g)
    assert jax.eval_shape(g, jax.ShapeDtypeStruct((2, *spatial, 2), jnp.float32)).shape == (2, 4)
    for name in g.vertex_names:
        trace = ng.search.shape_trace(g, name)
        assert ng.search.fshape(trace, spatial) == ng.search.feature_map_size(g, name)
        squashed = ng.search.squash_shapes(trace)
        if all(isinstance(s, ng.search.DeltaShape) for s in squashed):
            assert ng.search.fshape(squashed, spatial) == ng.search.feature_map_size(g, name)
    for name in g.vertex_names[1:]:
        for other in ng.search.add_edge_candidates(g, name):
            assert all(ng.search.feature_map_size(g, i) == ng.search.feature_map_size(g, name) for i in g.inputs(other))


# Layers that are exact identities under an identity init on positive inputs.
exact_dense = st.builds(lambda n, a: ng.VertexSpace(ng.DenseSpace(n, a)), sizes, st.sampled_from(["identity", "relu"]))
exact_conv = st.builds(
    lambda n, k, a: ng.VertexSpace(ng.ConvSpace(n, k, a)),
    sizes,
    st.lists(st.sampled_from([1, 2, 3, 5]), min_size=1, max_size=2),
    st.sampled_from(["identity", "relu"]),
)


@SETTINGS
@given(honouring(exact_dense), st.integers(0, 2**31 - 1), st.integers(1, 7))
def test_identity_init_computes_identity_dense(space, seed, n):
    inp = ng.input_vertex("in", shape=(n,))
    v = space(jax.random.key(seed), "v", inp, outsize=n, weight_init="identity")
    g = ng.build_graph(jax.random.key(seed), inputs=inp, outputs=v)
    x = jnp.arange(1.0, 2 * n + 1).reshape(2, n)
    np.testing.assert_array_equal(g(x), x)


@SETTINGS
@given(honouring(exact_conv), st.integers(0, 2**31 - 1), st.integers(1, 6))
def test_identity_init_computes_identity_conv(space, seed, c):
    inp = ng.input_vertex("in", shape=(5, 4, c))
    v = space(jax.random.key(seed), "v", inp, outsize=c, weight_init="identity")
    g = ng.build_graph(jax.random.key(seed), inputs=inp, outputs=v)
    x = jnp.arange(1.0, 20 * c + 1).reshape(1, 5, 4, c)
    np.testing.assert_array_equal(g(x), x)
