import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.graph._validate import validate_graph
from naivega_jax.search._archspace import eq_split


def names(key, space, inp, **kw):
    v = space(key, kw.pop("name", "v"), inp, **kw)
    return ng.build_graph(key, inputs=inp, outputs=v).vertex_names


def nin(v):
    return [ng.search.vertex_shape(i)[-1] for i in v.inputs]


def nout(v):
    return ng.search.vertex_shape(v)[-1]


def test_vertex_space(key):
    inp = ng.input_vertex("in", shape=(2,))
    v = ng.VertexSpace(ng.DenseSpace(3, "relu"))(key, "v", inp)
    assert (nin(v), nout(v), v.name, v.shield) == ([2], 3, "v", None)
    v = ng.VertexSpace(ng.search.NamedLayerSpace("dense", ng.DenseSpace(3, "relu")))(key, "v", inp)
    assert v.name == "v.dense"
    assert ng.VertexSpace(ng.DenseSpace(3), shielded=True)(key, "v", inp).shield == ()
    allowed = ng.VertexSpace(ng.DenseSpace(3), shielded=["KernelSizeMutation", "ActivationFunctionMutation"])
    assert allowed(key, "v", inp).shield == ("ActivationFunctionMutation", "KernelSizeMutation")


def test_vertex_space_outsize_and_init(key):
    inp = ng.input_vertex("in", shape=(2,))
    v = ng.VertexSpace(ng.DenseSpace(3))(key, "v", inp, outsize=4, weight_init="zero")
    assert nout(v) == 4 and v.init == "zero"


def test_noop_and_archspace(key, seq_rng):
    inp = ng.input_vertex("in", shape=(2,))
    assert ng.search.NoOpArchSpace()(key, "v", inp) is inp
    assert ng.ArchSpace(ng.search.NoOpArchSpace())(key, "v", inp) is inp
    space = ng.ArchSpace(ng.DenseSpace(3, "elu"))
    assert (nin(space(key, "v", inp)), nout(space(key, "v", inp))) == ([2], 3)
    v = space(key, "v", inp, outsize=4)
    assert (v.name, nin(v), nout(v)) == ("v", [2], 4)
    img = ng.input_vertex("in", shape=(6, 6, 2))
    space = ng.ArchSpace(ng.ConvSpace(3, range(2, 6)), ng.BatchNormSpace("relu"), ng.PoolSpace(2))
    rng = seq_rng()
    v = space.sample(rng, "conv", img)
    assert isinstance(v.op, ng.Conv) and (nin(v), nout(v), v.name) == ([2], 3, "conv")
    rng.ind = 1
    v = space.sample(rng, "bn", img)
    assert isinstance(v.op, ng.BatchNorm) and (nin(v), nout(v), v.name) == ([2], 2, "bn")


def test_conditional_arch_space(key):
    s1 = ng.ArchSpace(ng.DenseSpace(1))
    pred = lambda v: ng.search.vertex_shape(v)[-1] > 2
    v1, v2 = ng.input_vertex("in", shape=(3,)), ng.input_vertex("in", shape=(1,))
    assert isinstance(ng.search.ConditionalArchSpace(pred, s1)(key, "v", v1).op, ng.Dense)
    assert ng.search.ConditionalArchSpace(pred, s1)(key, "v", v2) is v2
    s2 = ng.ArchSpace(ng.BatchNormSpace("relu"))
    assert isinstance(ng.search.ConditionalArchSpace(pred, s1, s2)(key, "v", v1).op, ng.Dense)
    assert isinstance(ng.search.ConditionalArchSpace(pred, s1, s2)(key, "v", v2).op, ng.BatchNorm)


def test_repeat(key, seq_rng):
    inp = ng.input_vertex("in", shape=(3,))
    space = ng.RepeatArchSpace(ng.VertexSpace(ng.BatchNormSpace("relu")), 3)
    assert names(key, space, inp, name="test") == ("in", "test.1", "test.2", "test.3")
    space = ng.RepeatArchSpace(ng.VertexSpace(ng.BatchNormSpace("relu")), [2, 5])
    rng = seq_rng()
    assert space.sample(rng, "r", inp).name == "r.2"
    assert space.sample(rng, "r", inp).name == "r.5"
    space = ng.RepeatArchSpace(ng.VertexSpace(ng.DenseSpace(3, "relu")), 2)
    v = space(key, "test", inp, outsize=4)
    assert (nout(v), nin(v)) == (4, [4])
    assert names(key, space, inp, name="test", outsize=4) == ("in", "test.1", "test.2")
    assert ng.RepeatArchSpace(ng.VertexSpace(ng.BatchNormSpace("relu")), 0)(key, "test", inp) is inp


def test_arch_space_chain(key):
    inp = ng.input_vertex("in", shape=(3,))
    space = ng.ArchSpaceChain(ng.VertexSpace(ng.DenseSpace(2, "relu")), ng.VertexSpace(ng.DenseSpace(3, "relu")))
    v = space(key, "v", inp)
    assert (nout(v), nin(v)) == (3, [2])
    assert names(key, space, inp) == ("in", "v.1", "v.2")
    v = space(key, "v", inp, outsize=4)
    assert (nout(v), nin(v)) == (4, [4])


def test_eq_split():
    assert eq_split(13, 3) == [4, 4, 5]
    assert eq_split(2, 2) == [1, 1]
    assert eq_split(9, 1) == [9]
    assert eq_split(10, 4) == [2, 2, 3, 3]


def test_fork(key, seq_rng):
    inp = ng.input_vertex("in", shape=(3,))
    assert ng.ForkArchSpace(ng.VertexSpace(ng.BatchNormSpace("relu")), 1)(key, "v", inp).inputs == (inp,)
    space = ng.ForkArchSpace(ng.VertexSpace(ng.BatchNormSpace("relu")), 3)
    assert len(space(key, "test", inp).inputs) == 3
    assert names(key, space, inp, name="test") == ("in", "test.path1", "test.path2", "test.path3", "test.cat")
    space = ng.ForkArchSpace(ng.VertexSpace(ng.BatchNormSpace("relu")), [2, 5])
    rng = seq_rng()
    assert len(space.sample(rng, "v", inp).inputs) == 2
    assert len(space.sample(rng, "v", inp).inputs) == 5
    space = ng.ForkArchSpace(ng.VertexSpace(ng.DenseSpace(3, "relu")), 3)
    v = space(key, "v", inp, outsize=13)
    assert (v.name, nout(v), nin(v)) == ("v.cat", 13, [4, 4, 5])
    v = space(key, "v", inp, outsize=2)
    assert (nout(v), nin(v)) == (2, [1, 1])
    assert ng.ForkArchSpace(ng.VertexSpace(ng.DenseSpace(3, "relu")), 0)(key, "v", inp) is inp
    shielded = ng.ForkArchSpace(ng.DenseSpace(3), 2, shielded=True)(key, "v", inp)
    assert shielded.shield == () and shielded.inputs[0].shield is None


def test_residual(key):
    inp = ng.input_vertex("in", shape=(4,))
    space = ng.ResidualArchSpace(ng.DenseSpace(3, "relu"))
    v = space(key, "v", inp)
    assert (nin(v), nout(v)) == ([4, 4], 4)
    assert isinstance(v.inputs[1].op, ng.Dense)
    assert names(key, space, inp) == ("in", "v.res", "v.add")
    v = space(key, "v", inp, weight_init="identity")
    assert (v.name, v.op, v.inputs[0].name) == ("v.add.scale", ng.Scale(0.5), "v.add")
    assert ng.ResidualArchSpace(ng.DenseSpace(3), shielded=True)(key, "v", inp).shield == ()


def test_function_and_global_pool_space(key):
    inp = ng.input_vertex("in", shape=(3,))
    v = ng.FunctionSpace(ng.Scale(2.0), name_suffix=".fun")(key, "v", inp)
    assert (v.name, nin(v), nout(v)) == ("v.fun", [3], 3)
    g = ng.build_graph(key, inputs=inp, outputs=v)
    assert g(jnp.array([[1.0, 2.0, 3.0]])).tolist() == [[2.0, 4.0, 6.0]]
    img = ng.input_vertex("in", shape=(3, 4, 5))
    v = ng.GlobalPoolSpace()(key, "v", img)
    assert v.name == "v.globpool" and v.shield == ()
    g = ng.build_graph(key, inputs=img, outputs=v)
    assert g(jnp.ones((6, 3, 4, 5))).shape == (6, 5)
    kinds = {ng.GlobalPoolSpace()(jax.random.key(i), "v", img).op.kind for i in range(20)}
    assert kinds == {"max", "mean"}
    assert ng.GlobalPoolSpace("max", shielded=False)(key, "v", img).shield is None


def test_logging_arch_space_indents_nested_messages(key, caplog):
    inner = ng.search.LoggingArchSpace(ng.VertexSpace(ng.search.NamedLayerSpace("dense", ng.DenseSpace(3))))
    space = ng.search.LoggingArchSpace(ng.RepeatArchSpace(inner, 2), msgfun=lambda v: f"Block {v.name}")
    with caplog.at_level(logging.DEBUG, logger="naivega_jax.search"):
        v = space(key, "test", ng.input_vertex("in", shape=(2,)))
    assert v.name == "test.2.dense"
    assert caplog.messages == ["   Created test.1.dense", "   Created test.2.dense", "Block test.2.dense"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="naivega_jax.search"):
        space(key, "test", ng.input_vertex("in", shape=(2,)))
    assert caplog.messages == []


def dense_space():
    layer = ng.VertexSpace(ng.DenseSpace(range(3, 11), ["identity", "relu", "elu", "selu"]))
    block = ng.ArchSpace(
        ng.RepeatArchSpace(layer, range(1, 3)), ng.ForkArchSpace(layer, range(1, 4)), ng.ResidualArchSpace(layer)
    )
    out = ng.VertexSpace(ng.DenseSpace(3, "identity"), shielded=True)
    return ng.ArchSpaceChain(ng.RepeatArchSpace(block, range(1, 4)), out)


def conv_space():
    conv = ng.VertexSpace(ng.ConvSpace([4, 8], [1, 3, 5], ["relu", "identity"]))
    bn = ng.VertexSpace(ng.BatchNormSpace("relu"))
    block = ng.ArchSpace(conv, ng.ArchSpaceChain(conv, bn), ng.ArchSpaceChain(bn, conv))
    rfr = ng.ArchSpace(
        ng.RepeatArchSpace(block, [1, 2]), ng.ForkArchSpace(block, [1, 2, 3]), ng.ResidualArchSpace(block)
    )
    down = ng.ArchSpace(ng.PoolSpace(2, kinds="max"), ng.ConvSpace([4, 8], 2, strides=2, paddings=0))
    head = ng.ArchSpace(
        ng.ArchSpaceChain(ng.GlobalPoolSpace(), ng.RepeatArchSpace(ng.DenseSpace([8, 16]), [0, 1]), ng.DenseSpace(5)),
        ng.ArchSpaceChain(ng.ConvSpace(5, [1, 3]), ng.GlobalPoolSpace()),
    )
    return ng.ArchSpaceChain(ng.RepeatArchSpace(ng.ArchSpaceChain(rfr, down), [1, 2]), head)


@pytest.mark.parametrize(
    "make_space, in_shape, out_shape",
    [(dense_space, (5,), (3,)), (conv_space, (8, 8, 2), (5,))],
)
def test_sample_graph_validates_computes_and_is_deterministic(make_space, in_shape, out_shape):
    space = make_space()
    specs = set()
    for seed in range(12):
        g = ng.sample_graph(jax.random.key(seed), space, ng.input_vertex("in", shape=in_shape))
        validate_graph(g)
        out = jax.eval_shape(g, jax.ShapeDtypeStruct((2, *in_shape), jnp.float32))
        assert out.shape == (2, *out_shape)
        assert all(n == "in" or n.startswith("model.") for n in g.vertex_names)
        specs.add(g.spec)
    assert len(specs) >= 8
    a = ng.sample_graph(jax.random.key(3), space, ng.input_vertex("in", shape=in_shape))
    b = ng.sample_graph(jax.random.key(3), space, ng.input_vertex("in", shape=in_shape))
    assert a.spec == b.spec
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(x, y)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, *in_shape)), jnp.float32)
    assert a(x).shape == (2, *out_shape)


def test_sample_graph_contract_example(key):
    layer = ng.VertexSpace(ng.DenseSpace(outsizes=range(3, 11), activations=["identity", "relu", "elu", "selu"]))
    hidden = ng.RepeatArchSpace(layer, counts=range(1, 4))
    out = ng.VertexSpace(ng.DenseSpace(outsizes=3, activations="identity"), shielded=True)
    graph = ng.sample_graph(key, ng.ArchSpaceChain(hidden, out), ng.input_vertex("in", shape=(5,)))
    assert graph.output_names == ("model.2",) and graph.spec["model.2"].shield == ()
    assert 1 <= len(graph.vertex_names) - 2 <= 3
    assert graph(jnp.ones((4, 5))).shape == (4, 3)


def test_user_callable_space_gets_a_key(key):
    def space(k, name, v, *, outsize=None, weight_init="default"):
        assert isinstance(k, jax.Array)
        return ng.vertex(name, ng.Dense(outsize or 2), v, init=weight_init)

    v = ng.ArchSpaceChain(space, ng.DenseSpace(3))(key, "v", ng.input_vertex("in", shape=(4,)))
    assert [v.name, v.inputs[0].name] == ["v.2", "v.1"]


@pytest.mark.parametrize(
    "make, err, match",
    [
        (lambda: ng.ArchSpace(), ValueError, "at least one"),
        (lambda: ng.ArchSpaceChain(), ValueError, "at least one"),
        (lambda: ng.ArchSpace(3), TypeError, "architecture space"),
        (lambda: ng.RepeatArchSpace(ng.DenseSpace(3), -1), ValueError, "non-negative"),
        (lambda: ng.RepeatArchSpace(ng.DenseSpace(3), []), ValueError, "non-empty"),
        (lambda: ng.ForkArchSpace(ng.DenseSpace(3), [1, 2.5]), ValueError, "non-negative int"),
        (lambda: ng.VertexSpace(ng.Dense(3)), TypeError, "layer space"),
        (lambda: ng.VertexSpace(ng.DenseSpace(3), shielded=5), ng.GraphError, "shield"),
        (lambda: ng.FunctionSpace(), ValueError, "at least one"),
        (lambda: ng.FunctionSpace(lambda x: x), TypeError, "ng op"),
        (lambda: ng.search.ConditionalArchSpace(3, ng.DenseSpace(2)), TypeError, "callable"),
    ],
)
def test_bad_arch_spaces_raise_at_construction(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_bad_call_arguments(key):
    space = ng.VertexSpace(ng.DenseSpace(3))
    inp = ng.input_vertex("in", shape=(2,))
    with pytest.raises(TypeError, match="in_vertex"):
        space(key, "v", "in")
    with pytest.raises(ValueError, match="outsize"):
        space(key, "v", inp, outsize=0)
    with pytest.raises(ng.GraphError, match="weight init"):
        space(key, "v", inp, weight_init="ones")
    with pytest.raises(ValueError, match="needs outsize"):
        ng.ForkArchSpace(ng.DenseSpace(3), 2)(key, "v", inp, weight_init="identity")


def test_dense_space_on_an_image_fails_with_shape_error(key):
    with pytest.raises(ng.ShapeError, match="vector input"):
        ng.VertexSpace(ng.DenseSpace(3))(key, "v", ng.input_vertex("in", shape=(4, 4, 2)))


def autoflux_space(in_shape, outsize):
    """NaiveGAflux's AutoFlux initial_archspace, written with these spaces."""
    acts = ["identity", "relu", "elu", "selu"]
    out_shield = ["KernelSizeMutation", "ActivationFunctionMutation"]

    def convspace(outsizes, kernels, activations, shielded=False):
        conv = ng.search.LoggingArchSpace(
            ng.VertexSpace(ng.search.NamedLayerSpace("conv2d", ng.ConvSpace(outsizes, kernels, activations)), shielded)
        )
        bn = ng.search.LoggingArchSpace(
            ng.VertexSpace(ng.search.NamedLayerSpace("batchnorm", ng.BatchNormSpace(activations)))
        )
        return ng.ArchSpace(conv, ng.ArchSpaceChain(conv, bn), ng.ArchSpaceChain(bn, conv))

    def rep_fork_res(s):
        rep = ng.RepeatArchSpace(s, [1, 2])
        fork = ng.search.LoggingArchSpace(ng.ForkArchSpace(rep, [1, 2, 3], shielded=True))
        return ng.ArchSpace(rep, fork, ng.search.LoggingArchSpace(ng.ResidualArchSpace(rep, shielded=True)))

    def downsampling(outsizes):
        return ng.ArchSpace(
            ng.search.NamedLayerSpace("maxpool", ng.PoolSpace(2, strides=2, kinds="max")),
            ng.search.NamedLayerSpace("meanpool", ng.PoolSpace(2, strides=2, kinds="mean")),
            ng.search.NamedLayerSpace("stridedconv", ng.ConvSpace(outsizes, 2, acts, strides=2, paddings=0)),
        )

    conv1, conv2 = (
        convspace([2**i for i in range(3, 9)], [1, 3, 5, 7], acts),
        convspace([2**i for i in range(5, 10)], [1, 3, 5], acts),
    )
    red1 = ng.ArchSpaceChain(rep_fork_res(conv1), downsampling([2**i for i in range(3, 9)]))
    red2 = ng.ArchSpaceChain(rep_fork_res(conv2), downsampling([2**i for i in range(5, 10)]))
    maxreps = min(6, int(np.floor(np.log2(min(in_shape[:2])))))
    blocks = [ng.RepeatArchSpace(red, range(1, maxreps // 2 + 1)) for red in (red1, red2)]
    convout = ng.ArchSpaceChain(convspace(outsize, [1, 3, 5], "identity", out_shield), ng.GlobalPoolSpace())
    dense = ng.VertexSpace(ng.search.NamedLayerSpace("dense", ng.DenseSpace([2**i for i in range(8, 13)], acts)))
    dout = ng.VertexSpace(ng.search.NamedLayerSpace("dense", ng.DenseSpace(outsize, "identity")), shielded=out_shield)
    denseout = ng.ArchSpaceChain(ng.GlobalPoolSpace(), ng.RepeatArchSpace(dense, [0, 1, 2]), dout)
    return ng.ArchSpaceChain(*blocks, ng.ArchSpace(denseout, convout))


def test_autoflux_default_space_samples_valid_classifiers():
    space = autoflux_space((32, 32, 3), 10)
    kinds = set()
    for seed in range(4):
        g = ng.sample_graph(jax.random.key(seed), space, ng.input_vertex("in", shape=(32, 32, 3)))
        validate_graph(g)
        assert jax.eval_shape(g, jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)).shape == (2, 10)
        ops = {type(g.op(n)).__name__ for n in g.vertex_names}
        kinds |= ops
        for n in g.vertex_names:
            if isinstance(g.op(n), (ng.graph.Concat, ng.graph.Add, ng.GlobalPool)):
                assert g.spec[n].shield == ()
        assert g.spec[g.output_names[0]].shield in ((), ("ActivationFunctionMutation", "KernelSizeMutation"))
    assert {"Conv", "GlobalPool"} <= kinds
