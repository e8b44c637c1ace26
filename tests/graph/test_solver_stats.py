"""Statistics of a size solve come back with its selection: one record per call, none shared between calls."""

import threading

import numpy as np

import naivega_jax as ng
from naivega_jax.graph import _solver


def chain(key, width: int, depth: int) -> ng.Graph:
    """Dense layers of ``width`` in a chain: every layer is its own closed-form component."""
    cur = inp = ng.input_vertex("in", shape=(3,))
    for i in range(depth):
        cur = ng.vertex(f"d{i}", ng.Dense(width), cur)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("head", ng.Dense(2), cur))


def forked(key) -> ng.Graph:
    """A concatenation added to a dense layer: resizing the fork needs the MILP."""
    inp = ng.input_vertex("in", shape=(3,))
    d = ng.vertex("d", ng.Dense(8), inp)
    cat = ng.concat("cat", ng.vertex("a", ng.Dense(4), d), ng.vertex("b", ng.Dense(4), d))
    res = ng.add("res", ng.vertex("e", ng.Dense(8), inp), cat)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("head", ng.Dense(2), res))


def test_the_selection_carries_the_stats_of_its_own_solve(key):
    closed = ng.graph.neuron_selection(chain(key, 6, 3), {"d1": -2})
    milp = ng.graph.neuron_selection(forked(key), {"a": 2})
    assert isinstance(closed, dict) and closed["d1"].tolist() == sorted(closed["d1"].tolist())
    assert (closed.stats.components, closed.stats.milp, closed.stats.variables) == (1, 0, 0)
    assert milp.stats.components == 1 and milp.stats.milp == 1 and milp.stats.variables > 0
    assert closed.stats.seconds > 0 and milp.stats.seconds > 0


def test_prune_all_counts_one_component_per_group(key):
    from naivega_jax.graph._sizes import SizeStructure

    graph = chain(key, 5, 4)
    structure = SizeStructure.from_spec(graph.spec)
    sels = _solver.solve_selection(
        structure, _solver.SizeRequest(prune_all=True, no_insert=True), lambda n: np.ones(graph.nout(n))
    )
    assert sels.stats.components == len(structure.groups) and sels.stats.milp == 0


def test_the_solver_keeps_no_module_state():
    assert not hasattr(_solver, "last_stats")


def test_two_threads_solving_different_problems_each_get_their_own_stats(key):
    small, large = chain(key, 6, 2), forked(key)
    barrier = threading.Barrier(2)
    results: dict[str, list] = {"small": [], "large": []}

    def solve(name, graph, deltas):
        barrier.wait()
        for _ in range(20):
            sel = ng.graph.neuron_selection(graph, deltas)
            results[name].append((sel.stats.components, sel.stats.milp, sel.stats.variables))

    threads = [
        threading.Thread(target=solve, args=("small", small, {"d0": -1})),
        threading.Thread(target=solve, args=("large", large, {"a": 2})),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alone = ng.graph.neuron_selection(large, {"a": 2}).stats
    assert set(results["small"]) == {(1, 0, 0)}
    assert set(results["large"]) == {(1, 1, alone.variables)} and alone.variables > 0


def test_stats_survive_a_copy_and_a_pickle(key):
    import copy
    import pickle

    sel = ng.graph.neuron_selection(forked(key), {"a": 2})
    for other in (copy.copy(sel), pickle.loads(pickle.dumps(sel))):
        assert other.stats == sel.stats and other.keys() == sel.keys()
