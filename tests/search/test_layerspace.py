import logging

import jax
import pytest

import naivega_jax as ng


def test_dense_space_draws_outsize_then_activation(seq_rng):
    # Upstream BaseLayerSpace([1,2,3], [relu, sigmoid, identity]) with SeqRng: 1, sigmoid, 3, relu.
    rng = seq_rng()
    space = ng.DenseSpace([1, 2, 3], ["relu", "sigmoid", "identity"])
    assert space.sample(rng, (4,)) == ng.Dense(1, "sigmoid")
    assert space.sample(rng, (4,)) == ng.Dense(3, "relu")


def test_dense_space_outsize_override(key):
    space = ng.DenseSpace(3, "sigmoid")
    assert space(key, (2,)) == ng.Dense(3, "sigmoid")
    assert space(key, (3,), outsize=2) == ng.Dense(2, "sigmoid")


def test_conv_space_2d_kernel_dims_drawn_independently(seq_rng):
    rng = seq_rng()
    op = ng.ConvSpace(outsizes=5, kernel_sizes=range(2, 6), activations="relu").sample(rng, (5, 5, 4))
    assert op.kernel_size == (2, 3) and op.nout == 5 and op.activation == "relu"
    inp = ng.input_vertex("in", shape=(5, 5, 4))
    g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("c", op, inp))
    assert g.params["c"]["kernel"].shape == (2, 3, 4, 5)
    assert g.shape("c") == (5, 5, 5)


def test_conv_space_1d(seq_rng):
    rng = seq_rng()
    space = ng.ConvSpace(outsizes=4, kernel_sizes=range(2, 6), activations="elu")
    assert space.sample(rng, (5, 3)).kernel_size == (2,)
    op = space.sample(rng, (5, 4), outsize=3)
    assert op.kernel_size == (3,) and op.nout == 3


def test_conv_space_rank_fixed_by_kernel_space(key):
    space = ng.ConvSpace(outsizes=2, kernel_sizes=ng.search.CoupledParSpace([1, 3, 5], 2), strides=[1, 2])
    assert space.rank == 2
    op = space(key, (9, 9, 3))
    assert op.kernel_size[0] == op.kernel_size[1] and len(op.strides) == 2
    assert ng.ConvSpace(2, [(1, 3), (3, 1)]).rank == 2
    assert ng.ConvSpace(2, [1, 3]).rank is None
    with pytest.raises(ValueError, match="different ranks"):
        ng.ConvSpace(2, ng.ParSpace([1], [3]), strides=ng.search.SingletonParSpace(1, 1, 1))


def test_conv_space_paddings(key):
    assert ng.ConvSpace(2, 3, paddings=0)(key, (8, 8, 1)).padding == ((0, 0), (0, 0))
    assert ng.ConvSpace(2, 3, paddings="valid")(key, (8, 8, 1)).padding == "VALID"
    assert ng.ConvSpace(2, 3, paddings=((1, 2), (0, 1)))(key, (8, 8, 1)).padding == ((1, 2), (0, 1))
    pads = {ng.ConvSpace(2, 3, paddings=["SAME", 1])(jax.random.key(i), (8, 1)).padding for i in range(20)}
    assert pads == {"SAME", ((1, 1),)}


def test_conv_space_draws_cover_ranges():
    space = ng.ConvSpace(outsizes=[4, 8], kernel_sizes=[1, 3], activations=["relu", "elu"], dilations=[1, 2])
    ops = [space(jax.random.key(i), (16, 16, 3)) for i in range(60)]
    assert {op.nout for op in ops} == {4, 8}
    assert {op.kernel_size for op in ops} == {(1, 1), (1, 3), (3, 1), (3, 3)}
    assert {op.activation for op in ops} == {"relu", "elu"}
    assert {d for op in ops for d in op.dilation} == {1, 2}


def test_batchnorm_space(seq_rng, key):
    assert ng.BatchNormSpace("relu")(key, (2,)).activation == "relu"
    for space in (ng.BatchNormSpace("relu", "elu", "identity"), ng.BatchNormSpace(["relu", "elu", "identity"])):
        rng = seq_rng()
        assert [space.sample(rng, (2,)).activation for _ in range(3)] == ["relu", "elu", "identity"]
    assert ng.BatchNormSpace("relu")(key, (3,), outsize=7) == ng.BatchNorm("relu")


def test_pool_space(seq_rng, key):
    rng = seq_rng()
    space = ng.PoolSpace(window_sizes=range(1, 4), strides=1, kinds="mean")
    assert [space.sample(rng, (8, 2)).window for _ in range(3)] == [(1,), (2,), (3,)]
    assert isinstance(space.sample(rng, (8, 2)), ng.AvgPool)
    space = ng.PoolSpace(window_sizes=range(1, 4), strides=ng.search.SingletonParSpace(2, 3), kinds="max")
    assert space.sample(rng, (8, 8, 2)).window == (2, 3)
    op = space.sample(rng, (8, 8, 2))
    assert op.window == (1, 2) and op.strides == (2, 3) and isinstance(op, ng.MaxPool)
    kinds = {type(ng.PoolSpace(2)(jax.random.key(i), (4, 4, 1))).__name__ for i in range(20)}
    assert kinds == {"MaxPool", "AvgPool"}


def test_named_and_logging_layer_space(key, caplog):
    space = ng.search.LoggingLayerSpace(ng.search.NamedLayerSpace("test", ng.DenseSpace(2, "identity")))
    assert space.name == "test" and ng.DenseSpace(2).name == ""
    with caplog.at_level(logging.DEBUG, logger="naivega_jax.search"):
        op = space(key, (3,))
    assert op == ng.Dense(2)
    assert caplog.messages == [f"Create {op!r} from test"]
    assert space(key, (3,), outsize=4).nout == 4


@pytest.mark.parametrize(
    "make, err, match",
    [
        (lambda: ng.DenseSpace([], "relu"), ValueError, "non-empty"),
        (lambda: ng.DenseSpace(0, "relu"), ValueError, "positive int"),
        (lambda: ng.DenseSpace([3, -1], "relu"), ValueError, "positive int"),
        (lambda: ng.DenseSpace(3, "nope"), ng.GraphError, "nope"),
        (lambda: ng.ConvSpace(3, 0), ValueError, "kernel_sizes"),
        (lambda: ng.ConvSpace(3, 3, strides=[1, 0]), ValueError, "strides"),
        (lambda: ng.ConvSpace(3, 3, paddings="FULL"), ValueError, "padding"),
        (lambda: ng.ConvSpace(3, 3, paddings=-1), ValueError, "padding"),
        (lambda: ng.BatchNormSpace(), ValueError, "at least one"),
        (lambda: ng.PoolSpace(2, kinds="min"), ValueError, "kinds"),
        (lambda: ng.PoolSpace(0), ValueError, "window_sizes"),
        (lambda: ng.search.NamedLayerSpace("x", "dense"), TypeError, "layer space"),
    ],
)
def test_bad_layer_spaces_raise_at_construction(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_kernel_space_on_vector_input_raises_shape_error(key):
    with pytest.raises(ng.ShapeError, match="spatial"):
        ng.ConvSpace(3, 3)(key, (5,))
    with pytest.raises(ng.ShapeError, match="spatial"):
        ng.PoolSpace(2)(key, (5,))
