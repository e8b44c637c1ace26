"""Every op's output shape and values against references written by hand in numpy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng


def one_op(key, op, shape, *, randomise=True):
    """A graph ``in -> v`` applying ``op``; its params (and state) replaced by random values when asked."""
    inp = ng.input_vertex("in", shape=shape)
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("v", op, inp))
    if randomise:
        leaves, tree = jax.tree_util.tree_flatten((g.params, g.state))
        rng = np.random.default_rng(1)
        new = [jnp.asarray(rng.uniform(0.5, 1.5, np.shape(a)).astype(np.float32)) for a in leaves]
        params, state = jax.tree_util.tree_unflatten(tree, new)
        g = g.replace(params=params, state=state)
    return g


def data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
ACTIVATIONS = {
    "identity": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "swish": lambda x: x * sigmoid(x),
    "silu": lambda x: x * sigmoid(x),
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "relu6": lambda x: np.clip(x, 0, 6),
    "hard_tanh": lambda x: np.clip(x, -1, 1),
}


def test_every_registered_activation_has_a_reference_here():
    assert set(ACTIVATIONS) <= set(ng.graph.activation_names())
    assert {"identity", "relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid", "leaky_relu", "softplus"} <= set(
        ACTIVATIONS
    )


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values(name):
    x = np.linspace(-8, 8, 33).astype(np.float32)
    np.testing.assert_allclose(ng.graph.activation(name)(jnp.asarray(x)), ACTIVATIONS[name](x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, reference", [("elu", jax.nn.elu), ("selu", jax.nn.selu)])
def test_exp_based_elus_match_jax_in_value_and_gradient(name, reference):
    # through exp(x) - 1 rather than expm1 (XLA:CPU's older emitters compile expm1 to scalar code)
    x = jnp.concatenate([jnp.linspace(-20.0, 5.0, 257), jnp.array([0.0, -1e-8, 1e-8, -1e-4])])
    f = ng.graph.activation(name)
    np.testing.assert_allclose(f(x), reference(x), rtol=1e-6, atol=2e-7)
    grad, ref_grad = jax.vmap(jax.grad(f))(x), jax.vmap(jax.grad(reference))(x)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-6, atol=1e-7)
    assert float(jax.grad(f)(0.0)) == float(jax.grad(reference)(0.0))  # 1 (elu) and scale * alpha (selu) at 0


def test_dense_each_activation(key):
    x = data((4, 5))
    for name, ref in ACTIVATIONS.items():
        g = one_op(key, ng.Dense(3, activation=name), (5,))
        p = g.params["v"]
        assert p["kernel"].shape == (5, 3) and p["bias"].shape == (3,)
        y = g(x)
        assert y.shape == (4, 3)
        expected = ref(x @ np.asarray(p["kernel"]) + np.asarray(p["bias"]))
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5, err_msg=name)


def test_dense_without_bias_and_default_init(key):
    g = one_op(key, ng.Dense(4, use_bias=False), (6,), randomise=False)
    assert set(g.params["v"]) == {"kernel"}
    k = np.asarray(g.params["v"]["kernel"])
    assert k.shape == (6, 4) and k.dtype == np.float32
    # fan-in scaled normal: the spread of 24 draws is about 1/sqrt(6), far from the unit normal's
    assert 0.15 < k.std() < 0.8
    x = data((3, 6))
    np.testing.assert_allclose(g(x), x @ k, rtol=1e-5, atol=1e-6)


def same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def ref_window(x, window, strides, dilation, pads, fn):
    """A numpy loop over output positions: ``fn(patch)`` of each (dilated) window of the padded input."""
    n, *spatial, _ = x.shape
    rank = len(spatial)
    padded = np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=np.nan)
    eff = [(k - 1) * d + 1 for k, d in zip(window, dilation)]
    out_sp = [(sz + lo + hi - e) // s + 1 for sz, (lo, hi), e, s in zip(spatial, pads, eff, strides)]
    outs = {}
    for pos in np.ndindex(*out_sp):
        idx = tuple(slice(p * s, p * s + e, d) for p, s, e, d in zip(pos, strides, eff, dilation))  # dilated window
        patch = padded[(slice(None), *idx, slice(None))]
        assert patch.shape[1 : 1 + rank] == tuple(window)
        outs[pos] = fn(patch)
    first = next(iter(outs.values()))
    y = np.zeros((n, *out_sp, first.shape[-1]), np.float64)
    for pos, v in outs.items():
        y[(slice(None), *pos, slice(None))] = v
    return y


def resolve_pads(spatial, window, strides, dilation, padding):
    if padding == "VALID":
        return [(0, 0)] * len(spatial)
    if padding == "SAME":
        return [same_pads(sz, (k - 1) * d + 1, s) for sz, k, s, d in zip(spatial, window, strides, dilation)]
    return list(padding)


CONV_CASES = [
    # (input shape, kwargs, expected output feature shape)
    ((7, 2), dict(kernel_size=3), (7, 4)),
    ((7, 2), dict(kernel_size=(3,), padding="VALID"), (5, 4)),
    ((7, 2), dict(kernel_size=2, strides=2, padding="SAME"), (4, 4)),
    ((7, 2), dict(kernel_size=3, dilation=2, padding=((2, 1),)), (6, 4)),
    ((6, 6, 2), dict(kernel_size=3), (6, 6, 4)),
    ((6, 6, 2), dict(kernel_size=(3, 3), strides=2, padding="SAME"), (3, 3, 4)),
    ((6, 6, 2), dict(kernel_size=(3, 2), strides=(2, 1), padding="VALID"), (2, 5, 4)),
    ((6, 6, 2), dict(kernel_size=3, strides=2, padding=((1, 0), (2, 1))), (3, 4, 4)),
    ((6, 6, 2), dict(kernel_size=3, dilation=2, padding="VALID"), (2, 2, 4)),
    ((6, 6, 2), dict(kernel_size=(2, 3), dilation=(2, 1), strides=(1, 2), padding="SAME"), (6, 3, 4)),
    ((4, 5, 3, 2), dict(kernel_size=(2, 3, 1), strides=(1, 2, 1), padding="VALID"), (3, 2, 3, 4)),
]


@pytest.mark.parametrize(("shape", "kwargs", "out_shape"), CONV_CASES)
def test_conv_against_numpy_loop(key, shape, kwargs, out_shape):
    g = one_op(key, ng.Conv(4, activation="tanh", **kwargs), shape)
    op = g.op("v")
    rank = len(shape) - 1
    assert op.rank == rank and len(op.strides) == rank and len(op.dilation) == rank
    assert g.shape("v") == out_shape
    kernel, bias = np.asarray(g.params["v"]["kernel"]), np.asarray(g.params["v"]["bias"])
    assert kernel.shape == (*op.kernel_size, 2, 4)
    x = data((2, *shape))
    y = g(x)
    assert y.shape == (2, *out_shape)
    pads = resolve_pads(shape[:-1], op.kernel_size, op.strides, op.dilation, kwargs.get("padding", "SAME"))
    padded_x = np.pad(x, ((0, 0), *pads, (0, 0)))
    conv = lambda patch: np.einsum(patch_eq(rank), patch, kernel)
    expected = np.tanh(ref_window(padded_x, op.kernel_size, op.strides, op.dilation, [(0, 0)] * rank, conv) + bias)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def patch_eq(rank):
    sp = "hwd"[:rank]
    return f"n{sp}i,{sp}io->no"


def test_conv_output_shapes_known_by_hand(key):
    # one explicit case checked number by number: L=7, k=3, d=2 (span 5), pads (2, 1): (7+3-5)//1+1 = 6
    g = one_op(key, ng.Conv(1, kernel_size=3, dilation=2, padding=((2, 1),), use_bias=False), (7, 1))
    kernel = np.asarray(g.params["v"]["kernel"])[:, 0, 0]
    x = np.arange(1, 8, dtype=np.float32).reshape(1, 7, 1)
    y = np.asarray(g(x))[0, :, 0]
    assert y.shape == (6,)
    xp = np.concatenate([[0, 0], np.arange(1, 8), [0]]).astype(np.float32)  # padded: 0 0 1 .. 7 0
    expected = [kernel[0] * xp[i] + kernel[1] * xp[i + 2] + kernel[2] * xp[i + 4] for i in range(6)]
    np.testing.assert_allclose(y, expected, rtol=1e-5)


def test_conv_identity_and_zero_init(key):
    inp = ng.input_vertex("in", shape=(5, 5, 3))
    ident = ng.vertex("id", ng.Conv(3, 3), inp, init="identity")
    zero = ng.vertex("z", ng.Conv(3, (1, 3)), inp, init="zero")
    g = ng.build_graph(key, inputs=inp, outputs=[ident, zero])
    x = data((2, 5, 5, 3))
    y_id, y_z = g(x)
    np.testing.assert_allclose(y_id, x, atol=1e-6)
    np.testing.assert_array_equal(y_z, np.zeros((2, 5, 5, 3)))


def test_batchnorm_train_and_inference(key):
    g = one_op(key, ng.BatchNorm("relu", momentum=0.8, epsilon=1e-3), (3, 3, 2))
    scale, bias = np.asarray(g.params["v"]["scale"]), np.asarray(g.params["v"]["bias"])
    rmean, rvar = np.asarray(g.state["v"]["mean"]), np.asarray(g.state["v"]["var"])
    x = data((4, 3, 3, 2)) * 2 + 1
    mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))

    y, g2 = ng.apply(g, x, train=True)
    np.testing.assert_allclose(y, np.maximum((x - mean) / np.sqrt(var + 1e-3) * scale + bias, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g2.state["v"]["mean"], 0.8 * rmean + 0.2 * mean, rtol=1e-5)
    np.testing.assert_allclose(g2.state["v"]["var"], 0.8 * rvar + 0.2 * var, rtol=1e-5)
    # params are not state: they pass through unchanged
    np.testing.assert_array_equal(g2.params["v"]["scale"], scale)

    expected_inf = np.maximum((x - rmean) / np.sqrt(rvar + 1e-3) * scale + bias, 0)
    np.testing.assert_allclose(g(x), expected_inf, rtol=1e-4, atol=1e-5)
    y_inf, g3 = ng.apply(g, x, train=False)
    np.testing.assert_allclose(y_inf, expected_inf, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(g3.state["v"]["mean"], rmean)
    np.testing.assert_array_equal(g3.state["v"]["var"], rvar)


def test_batchnorm_fresh_state_is_zero_mean_unit_var(key):
    g = one_op(key, ng.BatchNorm(), (4,), randomise=False)
    np.testing.assert_array_equal(g.state["v"]["mean"], np.zeros(4))
    np.testing.assert_array_equal(g.state["v"]["var"], np.ones(4))
    np.testing.assert_array_equal(g.params["v"]["scale"], np.ones(4))
    x = data((5, 4))
    # inference with fresh statistics: x / sqrt(1 + eps)
    np.testing.assert_allclose(g(x), x / np.sqrt(1 + 1e-5), rtol=1e-6)
    # the docstring's numbers: mean of rows [0,1,2],[3,4,5] is [1.5,2.5,3.5]; 0.1 of it enters the running mean
    y, g3 = ng.apply(one_op(key, ng.BatchNorm(), (3,), randomise=False), np.arange(6.0).reshape(2, 3), train=True)
    np.testing.assert_allclose(g3.state["v"]["mean"], [0.15, 0.25, 0.35], rtol=1e-6)
    np.testing.assert_allclose(g3.state["v"]["var"], [0.9 + 0.1 * 2.25] * 3, rtol=1e-6)
    np.testing.assert_allclose(y, [[-1, -1, -1], [1, 1, 1]], rtol=1e-4)


POOL_CASES = [
    # (input shape, kwargs, expected output feature shape)
    ((6, 6, 2), dict(window=2), (3, 3, 2)),
    ((7, 7, 2), dict(window=(3, 3), strides=(2, 2), padding="SAME"), (4, 4, 2)),
    ((6, 6, 2), dict(window=3, strides=1, padding=((1, 1), (0, 2))), (6, 6, 2)),
    ((6, 6, 2), dict(window=(2, 3), strides=(2, 1), padding="VALID"), (3, 4, 2)),
    ((7, 2), dict(window=2, strides=1), (6, 2)),
    ((7, 2), dict(window=3, padding="SAME"), (3, 2)),
]


@pytest.mark.parametrize(("shape", "kwargs", "out_shape"), POOL_CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pools_against_numpy_loop(key, kind, shape, kwargs, out_shape):
    op = (ng.MaxPool if kind == "max" else ng.AvgPool)(**kwargs)
    g = one_op(key, op, shape)
    assert g.params == {} and g.state == {}
    resolved = g.op("v")
    window = resolved.window
    strides = kwargs.get("strides", window)
    assert resolved.strides == (strides if isinstance(strides, tuple) else (strides,) * (len(shape) - 1))
    assert g.shape("v") == out_shape
    x = data((2, *shape))
    y = g(x)
    assert y.shape == (2, *out_shape)
    rank = len(shape) - 1
    pads = resolve_pads(shape[:-1], window, resolved.strides, (1,) * rank, kwargs.get("padding", "VALID"))
    axes = tuple(range(1, rank + 1))
    if kind == "max":
        fn = lambda patch: np.nanmax(patch, axis=axes)
    else:  # padding counts as zeros: sum of the real elements over the full window size
        fn = lambda patch: np.nansum(patch, axis=axes) / math.prod(window)
    expected = ref_window(x, window, resolved.strides, (1,) * rank, pads, fn)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_pool_defaults_and_hand_values(key):
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    mx = one_op(key, ng.MaxPool(2), (4, 4, 1))
    av = one_op(key, ng.AvgPool(2), (4, 4, 1))
    assert mx.op("v").strides == (2, 2) and mx.op("v").padding == "VALID"
    np.testing.assert_array_equal(np.asarray(mx(x))[0, :, :, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(np.asarray(av(x))[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


@pytest.mark.parametrize("shape", [(5, 3), (4, 5, 3)])
def test_global_pool(key, shape):
    x = data((2, *shape))
    axes = tuple(range(1, len(shape)))
    for kind, ref in (("max", np.max), ("mean", np.mean)):
        g = one_op(key, ng.GlobalPool(kind), shape)
        assert g.shape("v") == (3,)
        y = g(x)
        assert y.shape == (2, 3)
        np.testing.assert_allclose(y, ref(x, axis=axes), rtol=1e-6, atol=1e-6)
    assert ng.GlobalPool().kind == "mean"


def test_flatten_is_channels_fastest(key):
    g = one_op(key, ng.Flatten(), (2, 3, 4))
    x = data((5, 2, 3, 4))
    y = np.asarray(g(x))
    assert g.shape("v") == (24,) and y.shape == (5, 24)
    for b, i, j, c in [(0, 0, 0, 0), (1, 1, 2, 3), (4, 0, 2, 1), (3, 1, 0, 2)]:
        assert y[b, (i * 3 + j) * 4 + c] == x[b, i, j, c]
    np.testing.assert_array_equal(y, x.reshape(5, -1))


def test_dropout_train_and_inference(key):
    g = one_op(key, ng.Dropout(0.3), (50, 40))
    x = np.abs(data((5, 50, 40))) + 0.1  # no zeros of its own
    y1, g1 = ng.apply(g, x, train=True, key=jax.random.key(7))
    y1 = np.asarray(y1)
    dropped = y1 == 0
    assert 0.28 < dropped.mean() < 0.32  # 10000 draws: std of the fraction ~0.005
    np.testing.assert_allclose(y1[~dropped], x[~dropped] / 0.7, rtol=1e-6)
    # deterministic for a key, different for another
    y2, _ = ng.apply(g, x, train=True, key=jax.random.key(7))
    np.testing.assert_array_equal(y1, y2)
    y3, _ = ng.apply(g, x, train=True, key=jax.random.key(8))
    assert not np.array_equal(y1 == 0, np.asarray(y3) == 0)
    # inference: identity
    np.testing.assert_array_equal(g(x), x)
    y4, _ = ng.apply(g, x, train=False, key=jax.random.key(7))
    np.testing.assert_array_equal(y4, x)
    assert g1.state == {} and g1.spec == g.spec


def test_dropout_rate_zero_is_identity_in_training(key):
    g = one_op(key, ng.Dropout(0.0), (6,))
    x = data((3, 6))
    y, _ = ng.apply(g, x, train=True)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("use_bias", [False, True])
def test_scale(key, use_bias):
    fresh = one_op(key, ng.Scale(0.5, use_bias=use_bias), (4, 3), randomise=False)
    np.testing.assert_array_equal(fresh.params["v"]["scale"], [0.5, 0.5, 0.5])
    assert ("bias" in fresh.params["v"]) == use_bias
    x = data((2, 4, 3))
    np.testing.assert_allclose(fresh(x), 0.5 * x, rtol=1e-6)
    g = one_op(key, ng.Scale(0.5, use_bias=use_bias), (4, 3))
    s = np.asarray(g.params["v"]["scale"])
    b = np.asarray(g.params["v"]["bias"]) if use_bias else 0.0
    np.testing.assert_allclose(g(x), x * s + b, rtol=1e-6, atol=1e-6)


def test_ops_are_frozen_hashable_and_comparable():
    ops = [
        ng.Dense(3, "relu"),
        ng.Conv(4, (3, 3), strides=2, padding=((1, 1), (0, 0))),
        ng.BatchNorm(),
        ng.MaxPool(2),
        ng.AvgPool((2, 2)),
        ng.GlobalPool("max"),
        ng.Flatten(),
        ng.Dropout(0.2),
        ng.Scale(0.5),
        ng.graph.Concat(),
        ng.graph.Add(),
        ng.graph.Input((3,)),
    ]
    assert len(set(ops)) == len(ops)
    assert ng.Dense(3, "relu") == ng.Dense(3, activation="relu") and ng.Dense(3) != ng.Dense(4)
    assert hash(ng.Conv(4, [3, 3], padding=[[1, 1], [0, 0]])) == hash(ng.Conv(4, (3, 3), padding=((1, 1), (0, 0))))
    # list arguments (as JSON or users give them) become tuples, so the op stays hashable
    listed = ng.Conv(4, [3, 3], strides=[2, 1], dilation=[1, 2])
    assert hash(listed) == hash(ng.Conv(4, (3, 3), strides=(2, 1), dilation=(1, 2)))
    assert hash(ng.MaxPool([2, 2], strides=[1, 1])) == hash(ng.MaxPool((2, 2), strides=(1, 1)))
    with pytest.raises(AttributeError):
        ops[0].nout = 5
    assert ops[0].replace(nout=5) == ng.Dense(5, "relu") and ops[0].nout == 3
    assert "Dense(nout=3" in repr(ops[0])


def test_size_traits_and_param_axes():
    assert ng.Dense(3).trait == ng.graph.ABSORB and ng.Conv(3).trait == ng.graph.ABSORB
    assert ng.graph.Concat().trait == ng.graph.STACK
    for op in (ng.BatchNorm(), ng.MaxPool(), ng.AvgPool(), ng.GlobalPool(), ng.Dropout(), ng.Scale(), ng.graph.Add()):
        assert op.trait == ng.graph.INVARIANT, op
    assert ng.graph.Input((3,)).trait == ng.graph.IMMUTABLE and ng.Flatten().trait == ng.graph.IMMUTABLE
    dense = ng.Dense(3).param_axes()
    assert dense["kernel"] == ng.graph.ParamAxes(out=1, inp=0, new="fanin") and dense["bias"].out == 0
    conv = ng.Conv(3, (3, 3)).param_axes()
    assert conv["kernel"].out == -1 and conv["kernel"].inp == -2
    assert ng.BatchNorm().state_axes()["var"].new == 1.0 and ng.BatchNorm().param_axes()["scale"].new == 1.0
    assert ng.Scale(0.5).param_axes()["scale"].new == 0.5
