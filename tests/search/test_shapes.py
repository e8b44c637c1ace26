"""The shape algebra, with the numbers of NaiveGAflux test/shape.jl."""

import pytest

import naivega_jax as ng
from naivega_jax.search._shapes import combine, filter_noops, order_shapes, revert, swap_shapes

Add, Mul, Div, Flatten = ng.search.ShapeAdd, ng.search.ShapeMul, ng.search.ShapeDiv, ng.search.ShapeFlatten


def test_fshape_of_nothing():
    assert ng.search.fshape((), (1, 2, 3, 4)) == (1, 2, 3, 4)


def test_shape_add():
    assert ng.search.fshape(Add(1, 2), (3, 4)) == (4, 6)
    assert ng.search.fshape(combine(Add(1, 2), Add(-2, -1)), (3, 4)) == (2, 5)
    assert combine(Add(1, 2), Add(3, 4)) == (Add(4, 6),)
    assert revert(Add(1, 2)) == Add(-1, -2)
    assert filter_noops(Add(0, 1, 2, 3)) == (Add(0, 1, 2, 3),)
    assert filter_noops(Add(0, 0)) == ()
    assert Add((1, 2)) == Add(1, 2)


def test_shape_mul():
    assert ng.search.fshape(Mul(1, 2), (3, 4)) == (3, 8)
    assert ng.search.fshape(combine(Mul(1, 2), Mul(2, 3)), (3, 4)) == (6, 24)
    assert combine(Mul(1, 2), Mul(3, 4)) == (Mul(3, 8),)
    assert revert(Mul(1, 2)) == Div(1, 2)
    assert filter_noops(Mul(0, 1, 2, 3)) == (Mul(0, 1, 2, 3),)
    assert filter_noops(Mul(1, 1)) == ()


def test_shape_div():
    assert ng.search.fshape(Div(1, 2), (3, 4)) == (3, 2)
    assert ng.search.fshape(combine(Div(1, 2), Div(2, 3)), (3, 4)) == (2, 1)
    assert combine(Div(1, 2), Div(3, 4)) == (Div(3, 8),)
    assert revert(Div(1, 2)) == Mul(1, 2)
    assert filter_noops(Div(1, 1)) == ()


def test_shape_flatten():
    assert ng.search.fshape(Flatten(), (1, 2)) == ng.search.fshape(Flatten(), (1, 2, 3)) == ()
    assert revert(revert(Flatten())) == Flatten()
    assert revert(revert(Flatten(2))) == Flatten(2)
    assert revert(Flatten(2)) == ng.search.RevertShape(Flatten(2))
    assert combine(Flatten(2), Flatten(2)) == (Flatten(2), Flatten(2))
    assert filter_noops(Flatten()) == (Flatten(),)


def test_ndims():
    assert Div(1, 2, 3).ndims_in == Div(1, 2, 3).ndims_out == 3
    assert Flatten(2).ndims_in == 2 and Flatten(2).ndims_out == 0


@pytest.mark.parametrize(
    "s1, s2, expected",
    [
        (Div(2, 2), Mul(2, 2), (Div(2, 2), Mul(2, 2))),
        (Mul(2, 2), Div(2, 2), (Mul(1, 1),)),
        (Div(3, 3), Mul(2, 2), (Div(3, 3), Mul(2, 2))),
        (Mul(3, 3), Div(2, 2), (Mul(3, 3), Div(2, 2))),
        (Div(2, 2), Mul(3, 3), (Div(2, 2), Mul(3, 3))),
        (Mul(2, 2), Div(3, 3), (Mul(2, 2), Div(3, 3))),
        (Div(4, 4), Mul(2, 2), (Div(4, 4), Mul(2, 2))),
        (Mul(4, 4), Div(2, 2), (Mul(2, 2),)),
        (Div(2, 2), Mul(4, 4), (Div(2, 2), Mul(4, 4))),
        (Mul(2, 2), Div(4, 4), (Mul(2, 2), Div(4, 4))),
    ],
)
def test_combine(s1, s2, expected):
    assert combine(s1, s2) == expected
    for n in range(1, 100, 5):
        shape = (n, n + 1)
        assert ng.search.fshape((s1, s2), shape) == ng.search.fshape(expected, shape)


def test_swap_shapes():
    assert swap_shapes(Add(1, 2), Add(2, 3)) == (Add(2, 3), Add(1, 2))
    sasm = (Add(1, 2), Mul(2, 3))
    assert swap_shapes(*sasm) == (Mul(2, 3), Add(2, 6))
    assert ng.search.fshape(swap_shapes(*sasm), (11, 12)) == ng.search.fshape(sasm, (11, 12)) == (24, 42)
    assert swap_shapes(Mul(2, 3), Add(1, 2)) == (Mul(2, 3), Add(1, 2))
    assert swap_shapes(Mul(2, 3), Add(4, 12)) == (Add(2, 4), Mul(2, 3))
    sdsa = (Div(2, 3), Add(1, 2))
    assert swap_shapes(*sdsa) == (Add(2, 6), Div(2, 3))
    assert ng.search.fshape(swap_shapes(*sdsa), (13, 14)) == ng.search.fshape(sdsa, (13, 14)) == (8, 7)
    for s in range(1, 11):
        assert ng.search.fshape(swap_shapes(*sasm), (s, s)) == ng.search.fshape(sasm, (s, s))
        assert ng.search.fshape(swap_shapes(*sdsa), (s, s)) == ng.search.fshape(sdsa, (s, s))
    assert swap_shapes(Add(1, 2), Div(2, 3)) == (Add(1, 2), Div(2, 3))
    assert swap_shapes(Add(4, 12), Div(2, 3)) == (Div(2, 3), Add(2, 4))
    assert swap_shapes(Mul(2, 4), Div(4, 8)) == (Mul(2, 4), Div(4, 8))
    assert swap_shapes(Add(2, 4), Flatten()) == (Add(2, 4), Flatten())


def test_order_shapes():
    assert order_shapes([Add(1, 2)]) == (Add(1, 2),)
    assert order_shapes([Add(1, 2), Mul(2, 3), Add(4, 6)]) == (Add(2, 2), Add(1, 2), Mul(2, 3))
    assert order_shapes([Add(1, 2), Mul(2, 3), Add(4, 6), Flatten()]) == (Add(1, 2), Add(2, 2), Mul(2, 3), Flatten())


def test_order_mixed_adds():
    s = [Add(1, 2), Div(2, 3), Mul(2, 2), Add(4, 4), Add(3, 5), Add(6, 8), Mul(2, 3), Mul(1, 1), Add(3, 7)]
    os = order_shapes(s)
    assert os == (Add(6, 12), Add(1, 2), Add(4, 6), Div(2, 3), Mul(2, 2), Add(3, 5), Mul(2, 3), Mul(1, 1), Add(3, 7))
    for n in range(1, 11):
        assert ng.search.fshape(s, (n, n)) == ng.search.fshape(os, (n, n))


def test_order_single_add_with_mul_and_div():
    s = [Mul(2, 2), Div(12, 12), Add(2, 3), Mul(2, 2), Mul(3, 3)]
    os = order_shapes(s)
    assert os == (Mul(2, 2), Div(12, 12), Mul(3, 3), Mul(2, 2), Add(12, 18))
    for n in range(1, 100, 5):
        assert ng.search.fshape(s, (n, n)) == ng.search.fshape(os, (n, n))


def test_squash_shapes():
    assert ng.search.squash_shapes(Add(1, 2)) == (Add(1, 2),)
    assert ng.search.squash_shapes([Add(1, 2), Add(3, 4)]) == (Add(4, 6),)
    assert ng.search.squash_shapes([Add(1, 2), Add(3, 4), Add(5, 6)]) == (Add(9, 12),)
    assert ng.search.squash_shapes([Add(1, 2), Add(3, 4), Add(-4, -6)]) == ()
    assert ng.search.squash_shapes([Add(1, 2), Mul(3, 4)]) == (Add(1, 2), Mul(3, 4))
    assert ng.search.squash_shapes([Add(1, 2), Add(-1, 1), Flatten()]) == (Add(0, 3), Flatten())
    forward = (Add(1, 2), Mul(3, 4))
    assert ng.search.squash_shapes(forward + revert(forward)) == ()
    assert ng.search.squash_shapes([Add(4, 2), Div(2, 2), Mul(2, 2), Add(-4, -2)]) == (Div(2, 2), Mul(2, 2))


@pytest.mark.parametrize(
    "s, expected",
    [
        ([Add(2, 3), Mul(2, 2), Mul(2, 2), Mul(3, 3), Div(12, 12)], (Add(2, 3),)),
        ([Mul(2, 2), Mul(2, 2), Mul(3, 3), Div(12, 12), Add(2, 3)], (Add(2, 3),)),
        ([Mul(2, 2), Mul(2, 2), Add(2, 3), Mul(3, 3), Div(12, 12)], (Mul(12, 12), Add(6, 9), Div(12, 12))),
        ([Mul(2, 2), Mul(2, 2), Div(12, 12), Add(2, 3), Mul(3, 3)], (Mul(4, 4), Div(12, 12), Mul(3, 3), Add(6, 9))),
    ],
    ids=["add first", "add last", "add mid", "add and div mid"],
)
def test_squash_mixed(s, expected):
    sq = ng.search.squash_shapes(s)
    assert sq == expected
    for n in range(1, 100, 5):
        assert ng.search.fshape(s, (n, n)) == ng.search.fshape(sq, (n, n))


def test_shape_diff_primitives():
    assert ng.search.shape_diff(Add(2, 2), Add(2, 2)) == ()
    assert ng.search.shape_diff(Add(2, 3), Add(3, 4)) == (Add(-1, -1),)
    assert ng.search.shape_diff(Mul(2, 2), Mul(2, 2)) == ()
    assert ng.search.shape_diff(Mul(2, 3), Mul(3, 4)) == (Div(3, 4), Mul(2, 3))
    assert ng.search.shape_diff(Div(2, 2), Div(2, 2)) == ()
    assert ng.search.shape_diff(Div(2, 3), Div(3, 4)) == (Mul(3, 4), Div(2, 3))
    assert ng.search.shape_diff(Div(2, 3), Div(4, 6)) == (Mul(2, 2),)
    assert ng.search.shape_diff(Flatten(), Flatten()) == ()
    assert ng.search.shape_diff(Flatten(2), Flatten(3)) == (Flatten(2), Flatten(3))


def test_shape_diff_sequences():
    s1 = [Add(2, 2), Div(2, 2), Mul(4, 2)]
    assert ng.search.shape_diff(s1, s1) == ()
    assert ng.search.shape_diff(s1, s1[:2]) == (Mul(4, 2),)
    assert ng.search.shape_diff(s1, s1[1:]) == (Add(4, 2),)
    assert ng.search.shape_diff(s1, [s1[0], s1[2]]) == (Div(8, 4), Mul(4, 2))
    assert ng.search.shape_diff(s1[:2], s1) == (Div(4, 2),)
    assert ng.search.shape_diff(s1[1:], s1) == (Add(-4, -2),)
    assert ng.search.shape_diff([s1[0], s1[2]], s1) == (Div(4, 2), Mul(8, 4))
    s2 = [Div(4, 4), Add(3, 5), Mul(8, 4), Div(2, 2)]
    assert ng.search.shape_diff(s1, s2) == (Div(4, 2), Mul(8, 4), Add(-20, -18))


def test_shape_diff_of_unresolved_branches_raises():
    par = (ng.search.ParallelShapes(((Add(1, 1),), (Add(2, 2),))),)
    with pytest.raises(ng.ShapeError, match="parallel"):
        ng.search.shape_diff(par, (Add(1, 1),))


def test_bad_shapes():
    with pytest.raises(TypeError, match="one int per spatial axis"):
        Add(1.5, 2)
    with pytest.raises(ng.ShapeError, match="2 spatial axes"):
        Add(1, 2).apply((3,))
    with pytest.raises(ng.ShapeError, match="no defined"):
        ng.search.fshape(ng.search.RevertShape(Flatten(2)), ())
