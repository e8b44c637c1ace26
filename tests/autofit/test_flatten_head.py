"""default_space(flatten_head=True): a third head, flatten then dense layers, that mutation and crossover keep valid."""

import json

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import naivega_jax as ng
from naivega_jax.autofit import candidate_crossover, graph_mutation


def _flat_graphs(shape, n=40):
    space = ng.autofit.default_space(shape, 10, flatten_head=True)
    graphs = [
        ng.sample_graph(jax.random.key(s), space, ng.input_vertex("in", shape=shape), name=f"m{s}") for s in range(n)
    ]
    return [g for g in graphs if any(isinstance(g.op(v), ng.Flatten) for v in g.vertex_names)], graphs


def test_the_flatten_head_is_drawn_and_off_by_default():
    flat, graphs = _flat_graphs((40, 1))
    assert 0 < len(flat) < len(graphs)
    plain = ng.autofit.default_space((40, 1), 10)
    for s in range(40):
        g = ng.sample_graph(jax.random.key(s), plain, ng.input_vertex("in", shape=(40, 1)))
        assert not any(isinstance(g.op(v), ng.Flatten) for v in g.vertex_names)
    for g in flat:
        (f,) = [v for v in g.vertex_names if isinstance(g.op(v), ng.Flatten)]
        (before,) = g.inputs(f)
        assert g.shape(f) == (g.shape(before)[0] * g.nout(before),)
        assert g(jnp.ones((2, 40, 1))).shape == (2, 10)


FLAT, _ = _flat_graphs((12, 12, 1), 16)


@settings(max_examples=8, deadline=None)
@given(st.integers(0, len(FLAT) - 1), st.integers(0, 2**31 - 1))
def test_mutation_chains_keep_flatten_head_graphs_valid(index, seed):
    mutate = graph_mutation((12, 12, 1))
    g = FLAT[index]
    for k in range(4):
        g = mutate(jax.random.fold_in(jax.random.key(seed), k), g)
        assert g(jnp.ones((2, 12, 12, 1))).shape == (2, 10)
        assert any(isinstance(g.op(v), ng.Flatten) for v in g.vertex_names)


@settings(max_examples=8, deadline=None)
@given(st.integers(0, len(FLAT) - 1), st.integers(0, len(FLAT) - 1), st.integers(0, 2**31 - 1))
def test_crossover_of_flatten_head_graphs_gives_valid_graphs(i, j, seed):
    cross = candidate_crossover(pcrossover=1.0, pswap=0.5)
    a = ng.Candidate(FLAT[i], optimiser=ng.Adam(1e-3), batch_size=32)
    b = ng.Candidate(FLAT[j], optimiser=ng.Adam(1e-3), batch_size=32)
    for child in cross(jax.random.key(seed), (a, b)):
        assert child.graph(jnp.ones((2, 12, 12, 1))).shape == (2, 10)


def _has_flatten(g) -> bool:
    return any(isinstance(g.op(v), ng.Flatten) for v in g.vertex_names)


def test_the_command_line_draws_the_flatten_head_for_search_and_random_search_alike(tmp_path, capsys):
    from naivega_jax.cli import main

    x, y, xt, yt = ng.datasets.load("digits")
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x[:300], y_train=y[:300], x_test=xt[:40], y_test=yt[:40])
    # the space's own members only: without the conventional CNN, which every image search has and which flattens
    common = ["--dataset", str(data), "--population", "3", "--epochs", "1", "--generations", "1", "--quiet"]
    common.append("--no-conventional-cnn")
    runs = {}
    for name, extra in {
        "plain": ["--screening", "3"],
        "flat": ["--screening", "3", "--flatten-head"],
        "random": ["--flatten-head", "--strategy", "random", "--budget", "1620"],
    }.items():
        assert main(["fit", "--out", str(tmp_path / name), *common, *extra]) == 0
        runs[name] = ng.load_population(tmp_path / name)
    assert not any(_has_flatten(c.graph) for c in runs["plain"])
    flat = [_has_flatten(c.graph) for c in runs["flat"]]
    assert 0 < sum(flat) < len(flat)  # the pooled heads are still drawn
    # random search draws the first members of the search's screen: the same graphs
    assert [c.graph.spec for c in runs["random"]] == [c.graph.spec for c in runs["flat"]][:3]
    assert json.loads((tmp_path / "flat" / "run.json").read_text())["cli"]["flatten_head"] is True
    vectors = tmp_path / "v.npz"
    np.savez(vectors, x_train=x[:300].reshape(300, -1), y_train=y[:300], x_test=xt[:40].reshape(40, -1), y_test=yt[:40])
    assert main(["fit", "--dataset", str(vectors), "--out", str(tmp_path / "vec"), "--flatten-head", "--quiet"]) == 2
    assert "--flatten-head is for images and sequences" in capsys.readouterr().err
    assert not (tmp_path / "vec").exists()
