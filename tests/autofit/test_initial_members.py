"""The first generation's given members: ``conventional_space`` (the CNN people write by hand, in every image
search by default), ``default_members``, ``initial_population(members=...)`` and ``fit(initial_members=...)``."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naivega_jax as ng
from naivega_jax.autofit import (
    candidate_crossover,
    conventional_space,
    default_members,
    default_space,
    graph_mutation,
    initial_population,
)


def _conventional(shape, nclasses=10, key=0, **kw):
    space = conventional_space(shape, nclasses, **kw)
    return ng.sample_graph(jax.random.key(key), space, ng.input_vertex("in", shape=shape), name="m")


def _ops(g):
    return [type(g.op(v)).__name__ for v in g.vertex_names][1:]


def test_the_conventional_cnn_is_two_conv_pool_stages_a_flatten_and_a_dense_layer():
    g = _conventional((28, 28, 1))
    assert _ops(g) == ["Conv", "MaxPool", "Conv", "MaxPool", "Flatten", "Dense", "Dense"]
    conv1, conv2 = 3 * 3 * 1 * 32 + 32, 3 * 3 * 32 * 64 + 64
    dense, out = 7 * 7 * 64 * 128 + 128, 128 * 10 + 10
    assert ng.nparams(g) == conv1 + conv2 + dense + out == 421_642
    assert g(jnp.ones((2, 28, 28, 1))).shape == (2, 10)
    # no choice is left to the key but the weights
    assert _conventional((28, 28, 1), key=1).spec == g.spec
    # a map of more than 8 x 8 positions after the two pools is pooled, not flattened
    big = _conventional((64, 64, 3), 5)
    assert _ops(big)[4] == "GlobalPool"
    assert big(jnp.ones((1, 64, 64, 3))).shape == (1, 5)
    # sequences: the same with 1-D convolutions
    seq = _conventional((40, 1))
    assert _ops(seq)[:5] == ["Conv", "MaxPool", "Conv", "MaxPool", "Flatten"] and seq.shape(seq.vertex_names[5]) == (
        10 * 64,
    )


def test_the_conventional_cnn_for_regression_ends_in_target_units_and_bad_shapes_are_refused():
    g = _conventional((8, 8, 1), 2, task="regression")
    assert g.output_names[0].endswith(".targets") and g.shape(g.output_names[0]) == (2,)
    for shape in [(3, 8, 1), (8,), (4, 4, 4, 4, 1)]:
        with pytest.raises(ValueError, match=r"conventional_space: in_shape must be \(H, W, C\) or \(L, C\)"):
            conventional_space(shape, 10)
    with pytest.raises(ValueError, match="nclasses"):
        conventional_space((8, 8, 1), 1)


def test_default_members_are_the_conventional_cnn_for_images_only():
    (space,) = default_members((28, 28, 1), 10)
    g = ng.sample_graph(jax.random.key(0), space, ng.input_vertex("in", shape=(28, 28, 1)), name="m")
    assert g.spec == _conventional((28, 28, 1)).spec
    assert default_members((40, 1), 10) == () and default_members((7,), 3) == ()


def test_given_members_take_the_last_places_and_the_drawn_ones_stay_as_they_were():
    shape, key = (8, 8, 1), jax.random.key(3)
    space = default_space(shape, 10)
    plain = initial_population(key, space, shape, 5)
    own = _conventional(shape)
    trained = ng.Candidate(own, optimiser=ng.Momentum(0.05), batch_size=64, fitness=0.9, info={"x": 1})
    pop = initial_population(key, space, shape, 5, members=[conventional_space(shape, 10), own, trained])
    for a, b in zip(plain[:2], pop[:2], strict=True):  # the drawn members: same graphs, weights and settings
        assert a.graph.spec == b.graph.spec and a.optimiser == b.optimiser and a.batch_size == b.batch_size
        assert all(
            np.array_equal(x, y)
            for x, y in zip(jax.tree.leaves(a.graph.params), jax.tree.leaves(b.graph.params), strict=True)
        )
    drawn, graph, cand = pop[2:]
    assert drawn.graph.spec != own.spec  # named for its place: model3
    assert all(v.startswith("model3") for v in drawn.graph.vertex_names[1:])
    assert ng.nparams(drawn.graph) == ng.nparams(own)
    for c in (drawn, graph):
        assert c.optimiser == ng.Adam(1e-3) and c.batch_size == 32
    assert graph.graph is own
    assert cand.optimiser == ng.Momentum(0.05) and cand.batch_size == 64
    assert cand.fitness is None and dict(cand.info) == {}
    assert [c.lineage[0].get("given") for c in pop] == [None, None, 0, 1, 2]
    assert [c.lineage[0]["name"] for c in pop] == [f"model{i}" for i in range(1, 6)]
    assert all(
        c.optimiser is None for c in initial_population(key, space, shape, 3, members=[trained], draw_optimisers=False)
    )
    with pytest.raises(ValueError, match="3 members given for a population of 2"):
        initial_population(key, space, shape, 2, members=[own] * 3)


CONV = _conventional((12, 12, 1))
DRAWN = [
    ng.sample_graph(
        jax.random.key(s), default_space((12, 12, 1), 10), ng.input_vertex("in", shape=(12, 12, 1)), name=f"d{s}"
    )
    for s in range(6)
]


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_mutation_chains_keep_the_conventional_cnn_valid(seed):
    mutate = graph_mutation((12, 12, 1))
    g = CONV
    for k in range(4):
        g = mutate(jax.random.fold_in(jax.random.key(seed), k), g)
        assert g(jnp.ones((2, 12, 12, 1))).shape == (2, 10)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, len(DRAWN) - 1), st.integers(0, 2**31 - 1))
def test_crossover_of_the_conventional_cnn_with_drawn_members_gives_valid_graphs(i, seed):
    cross = candidate_crossover(pcrossover=1.0, pswap=0.5)
    a = ng.Candidate(CONV, optimiser=ng.Adam(1e-3), batch_size=32)
    b = ng.Candidate(DRAWN[i], optimiser=ng.Adam(1e-3), batch_size=32)
    for child in cross(jax.random.key(seed), (a, b)):
        assert child.graph(jnp.ones((2, 12, 12, 1))).shape == (2, 10)


@pytest.fixture(scope="module")
def digits():
    x, y, xt, yt = ng.datasets.load("digits")
    return x[:300], y[:300], xt[:60], yt[:60]


def test_an_image_search_has_the_conventional_cnn_in_its_first_generation_unless_told_otherwise(tmp_path, digits):
    x, y, _, _ = digits
    common = dict(key=jax.random.key(0), population_size=3, max_generations=1, progress=False, screening=2)
    pop = ng.autofit.fit(x, y, out_dir=tmp_path / "default", epochs_per_generation=1, **common)
    assert len(pop) == 6 and all(c.fitness is not None for c in pop)  # generation 1 only: the screen, scored
    (conv,) = [c for c in pop if "given" in c.lineage[0]]
    assert conv.lineage[0]["name"] == "model6" and conv.lineage[0]["given"] == 0
    assert _ops(conv.graph) == _ops(_conventional((8, 8, 1))) and conv.batch_size == 32
    log = (tmp_path / "default" / "run.log").read_text()
    assert "generation 1: 5 members drawn from the space and 1 given" in log
    assert f"gen 1 candidate 6/6: fitness {conv.fitness:.4f}" in log
    none = ng.autofit.fit(x, y, out_dir=tmp_path / "none", epochs_per_generation=1, initial_members=(), **common)
    assert not any("given" in c.lineage[0] for c in none)
    assert "given" not in (tmp_path / "none" / "run.log").read_text()
    # the drawn members are the same in both runs
    drawn = {c.lineage[0]["name"]: c.graph.spec for c in pop if "given" not in c.lineage[0]}
    assert drawn == {c.lineage[0]["name"]: c.graph.spec for c in none if c.lineage[0]["name"] != "model6"}


def test_fit_refuses_bad_initial_members_in_one_line_before_any_work(tmp_path, digits):
    x, y, _, _ = digits
    wrong = _conventional((8, 8, 1), 3)  # three outputs for ten classes
    cases = [
        (
            (wrong,),
            ValueError,
            r"initial_members\[0\]: its graph maps inputs of shapes \[\(8, 8, 1\)\] to outputs of "
            r"shapes \[\(3,\)\]; the data need one input of shape \(8, 8, 1\) and one output of shape \(10,\)",
        ),
        ((_conventional((12, 12, 1)),), ValueError, r"initial_members\[0\]: its graph maps inputs of shapes \[\(12,"),
        (("not a space",), TypeError, r"initial_members must be None or a sequence"),
        ([42], ValueError, r"initial_members\[0\] must be an ng.Candidate, an ng.Graph or a space"),
        ([_conventional((8, 8, 1))] * 7, ValueError, "initial_members has 7 members; the first generation has 6"),
    ]
    for i, (members, error, message) in enumerate(cases):
        members = members[0] if isinstance(members[0], str) else members
        with pytest.raises(error, match=message):
            ng.autofit.fit(
                x,
                y,
                key=jax.random.key(0),
                out_dir=tmp_path / str(i),
                population_size=3,
                screening=2,
                progress=False,
                initial_members=members,
            )
        assert not (tmp_path / str(i)).exists()


def test_random_search_and_the_command_line_take_the_same_members(tmp_path, digits, capsys):
    from naivega_jax.cli import main

    x, y, xt, yt = digits
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x, y_train=y, x_test=xt, y_test=yt)
    common = ["--dataset", str(data), "--population", "3", "--epochs", "1", "--generations", "1", "--quiet"]
    for name, extra in {
        "random": ["--strategy", "random", "--budget", "810"],
        "plain": ["--no-conventional-cnn", "--strategy", "random", "--budget", "810"],
    }.items():
        assert main(["fit", "--out", str(tmp_path / name), *common, *extra]) == 0
    conv = _conventional((8, 8, 1)).spec
    given_ = {c.lineage[0]["name"]: c for c in ng.load_population(tmp_path / "random") if "given" in c.lineage[0]}
    assert list(given_) == ["model3"] and ng.nparams(given_["model3"].graph) == ng.nparams(_conventional((8, 8, 1)))
    assert _ops(given_["model3"].graph) == _ops(_conventional((8, 8, 1))) and given_["model3"].graph.spec != conv
    plain = ng.load_population(tmp_path / "plain")
    assert not any("given" in c.lineage[0] for c in plain)
    assert json.loads((tmp_path / "plain" / "run.json").read_text())["cli"]["no_conventional_cnn"] is True
