"""Check 20: sampling with outsize=nout(in) and an identity init computes the identity exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng


def dense(*sizes, act="identity"):
    spaces = [ng.VertexSpace(ng.DenseSpace(s, act)) for s in sizes]
    return spaces[0] if len(spaces) == 1 else ng.ArchSpaceChain(*spaces)


def conv(*sizes, k=3):
    spaces = [ng.VertexSpace(ng.ConvSpace(s, k)) for s in sizes]
    return spaces[0] if len(spaces) == 1 else ng.ArchSpaceChain(*spaces)


def sampled(space, in_shape, weight_init="identity"):
    inp = ng.input_vertex("in", shape=in_shape)
    v = space(jax.random.key(0), "v", inp, outsize=in_shape[-1], weight_init=weight_init)
    return ng.build_graph(jax.random.key(1), inputs=inp, outputs=v)


def assert_identity_dense(space, n=3):
    g = sampled(space, (n,))
    x = jnp.arange(1.0, 2 * n + 1).reshape(2, n)
    np.testing.assert_array_equal(g(x), x)


def assert_identity_conv(space, c=3):
    g = sampled(space, (5, 4, c))
    x = jnp.arange(1.0, 5 * 4 * c + 1).reshape(1, 5, 4, c)
    np.testing.assert_array_equal(g(x), x)


def test_single_layers_identity_and_zero():
    assert_identity_dense(ng.VertexSpace(ng.DenseSpace(3)), n=4)
    assert_identity_conv(ng.VertexSpace(ng.ConvSpace(3, 3)), c=6)
    g = sampled(ng.VertexSpace(ng.DenseSpace(3)), (4,), weight_init="zero")
    np.testing.assert_array_equal(g(jnp.arange(8.0).reshape(2, 4)), np.zeros((2, 4)))
    inp = ng.input_vertex("in", shape=(4, 5, 6))
    g = ng.build_graph(
        jax.random.key(0),
        inputs=inp,
        outputs=ng.VertexSpace(ng.ConvSpace(3, 3))(jax.random.key(0), "v", inp, weight_init="zero"),
    )
    np.testing.assert_array_equal(g(jnp.arange(240.0).reshape(2, 4, 5, 6)), np.zeros((2, 4, 5, 3)))


@pytest.mark.parametrize("k", [1, 2, 4, (3, 5), (2, 3)])
def test_conv_identity_for_any_kernel_under_same_padding(k):
    assert_identity_conv(
        ng.VertexSpace(ng.ConvSpace(3, ng.search.SingletonParSpace(*k) if isinstance(k, tuple) else k))
    )


def test_conv1d_identity():
    g = sampled(ng.VertexSpace(ng.ConvSpace(3, 3)), (7, 2))
    x = jnp.arange(1.0, 15.0).reshape(1, 7, 2)
    np.testing.assert_array_equal(g(x), x)


def test_repeat_and_chain_identity():
    assert_identity_dense(ng.RepeatArchSpace(ng.VertexSpace(ng.DenseSpace(3)), 3))
    assert_identity_dense(dense(2, 3, act="relu"))
    assert_identity_conv(ng.RepeatArchSpace(ng.VertexSpace(ng.ConvSpace(3, 3)), 2))


@pytest.mark.parametrize("npaths", [1, 2, 3])
def test_fork_identity(npaths):
    assert_identity_dense(ng.ForkArchSpace(dense(3), npaths), n=2 * npaths + 1)
    assert_identity_conv(ng.ForkArchSpace(conv(3), npaths), c=2 * npaths + 1)


@pytest.mark.parametrize("nreps", [1, 2, 3])
def test_fork_of_repeat_identity(nreps):
    assert_identity_dense(ng.ForkArchSpace(ng.RepeatArchSpace(dense(3), nreps), 3), n=7)
    assert_identity_conv(ng.ForkArchSpace(ng.RepeatArchSpace(conv(3), nreps), 3), c=7)


@pytest.mark.parametrize("sizes", [(3,), (2, 3), (2, 3, 4)])
def test_fork_of_chain_identity(sizes):
    assert_identity_dense(ng.ForkArchSpace(ng.ArchSpaceChain(*[dense(s) for s in sizes]), 3), n=7)
    pool = ng.VertexSpace(ng.PoolSpace(1))
    assert_identity_conv(ng.ForkArchSpace(ng.ArchSpaceChain(pool, *[conv(s) for s in sizes]), 3), c=7)


def test_residual_identity():
    assert_identity_dense(ng.ResidualArchSpace(ng.DenseSpace(3)))
    assert_identity_conv(ng.ResidualArchSpace(ng.ConvSpace(3, 3)))


@pytest.mark.parametrize("npaths", [1, 2, 3])
def test_residual_of_fork_identity(npaths):
    assert_identity_dense(ng.ResidualArchSpace(ng.ForkArchSpace(dense(3), npaths)))
    assert_identity_conv(ng.ResidualArchSpace(ng.ForkArchSpace(conv(3), npaths)))


def test_fork_of_residual_identity_with_one_path():
    assert_identity_dense(ng.ForkArchSpace(ng.ResidualArchSpace(dense(3)), 1))
    assert_identity_conv(ng.ForkArchSpace(ng.ResidualArchSpace(conv(3)), 1))


def test_residual_with_zero_init_is_identity_without_scale():
    g = sampled(ng.ResidualArchSpace(ng.DenseSpace(3)), (4,), weight_init="zero")
    assert g.vertex_names == ("in", "v.res", "v.add")
    x = jnp.arange(1.0, 9.0).reshape(2, 4)
    np.testing.assert_array_equal(g(x), x)


def test_fork_converts_identity_to_partial_identity_per_path():
    inp = ng.input_vertex("in", shape=(13,))
    v = ng.ForkArchSpace(dense(3), 3)(jax.random.key(0), "v", inp, outsize=13, weight_init="identity")
    assert [p.init for p in v.inputs] == [
        ng.graph.PartialIdentityInit(0, 0),
        ng.graph.PartialIdentityInit(4, 0),
        ng.graph.PartialIdentityInit(8, 0),
    ]
    v = ng.ForkArchSpace(ng.RepeatArchSpace(dense(3), 2), 2)(
        jax.random.key(0), "v", ng.input_vertex("in", shape=(5,)), outsize=5, weight_init="identity"
    )
    # The second layer of each path already has the path's size: plain identity.
    assert [(p.init, p.inputs[0].init) for p in v.inputs] == [
        ("identity", ng.graph.PartialIdentityInit(0, 0)),
        ("identity", ng.graph.PartialIdentityInit(2, 0)),
    ]


def test_upstream_weight_init_names():
    assert (ng.search.DefaultWeightInit, ng.search.IdentityWeightInit, ng.search.ZeroWeightInit) == (
        "default",
        "identity",
        "zero",
    )
    assert ng.search.PartialIdentityWeightInit is ng.graph.PartialIdentityInit
