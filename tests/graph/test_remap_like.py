"""ng.remap_like / ng.remap_opt_state: state shaped like a graph's params follows every surgery, neuron for neuron."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_surgery_properties import graphs, one_step

import naivega_jax as ng


def ones_like(graph):
    return jax.tree_util.tree_map(jnp.ones_like, graph.params)


def dense_graph(key):
    inp = ng.input_vertex("in", shape=(3,))
    d1 = ng.vertex("d1", ng.Dense(4, "relu"), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), d1)
    d2 = ng.vertex("d2", ng.Dense(5, "relu"), bn)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(2), d2))


def assert_consistent(old, new, where=""):
    """Where remap_like says a value was kept (ones stay 1), remapping old's own params gives new's params
    exactly; everywhere else it gives 0. Returns the number of kept and new entries."""
    mask = ng.remap_like(old, new, ones_like(old))
    values = ng.remap_like(old, new, old.params)
    kept = fresh = 0
    assert set(mask) == set(new.params)
    for v, arrays in new.params.items():
        assert set(mask[v]) == set(arrays)
        for p, arr in arrays.items():
            m, got, want = np.asarray(mask[v][p]), np.asarray(values[v][p]), np.asarray(arr)
            assert m.shape == want.shape == got.shape, (where, v, p)
            assert set(np.unique(m)) <= {0.0, 1.0}, (where, v, p)
            np.testing.assert_array_equal(got[m == 1], want[m == 1], err_msg=f"{where} {v}/{p}")
            assert np.all(got[m == 0] == 0), (where, v, p)
            kept += int(m.sum())
            fresh += int((m == 0).sum())
    return kept, fresh


def test_delta_nout_plus_two_keeps_ones_on_kept_neurons_and_zeros_on_new_ones_for_every_parameter(key):
    g = dense_graph(key)
    g2 = ng.delta_nout(g, {"d1": +2})
    mu = ng.remap_like(g, g2, ones_like(g))
    # d1 grew from 4 to 6 (the batch norm follows); d2 reads 6 inputs.
    expected = {
        ("d1", "kernel"): np.concatenate([np.ones((3, 4)), np.zeros((3, 2))], axis=1),
        ("d1", "bias"): np.array([1, 1, 1, 1, 0, 0]),
        ("bn", "scale"): np.array([1, 1, 1, 1, 0, 0]),
        ("bn", "bias"): np.array([1, 1, 1, 1, 0, 0]),
        ("d2", "kernel"): np.concatenate([np.ones((4, 5)), np.zeros((2, 5))], axis=0),
        ("d2", "bias"): np.ones(5),
        ("out", "kernel"): np.ones((5, 2)),
        ("out", "bias"): np.ones(2),
    }
    got = {(v, p): np.asarray(a) for v, arrays in mu.items() for p, a in arrays.items()}
    assert set(got) == set(expected)
    for k, want in expected.items():
        np.testing.assert_array_equal(got[k], want, err_msg=str(k))


def test_shrinking_keeps_the_values_of_the_neurons_the_surgery_kept(key):
    g = dense_graph(key)
    # Neuron 1 of d2 has the least utility: it is the one removed.
    utility = lambda graph, name: np.array([5.0, 0.1, 4.0, 3.0, 2.0]) if name == "d2" else np.ones(graph.nout(name))
    g2 = ng.delta_nout(g, {"d2": -1}, utility=utility)
    tree = jax.tree_util.tree_map(lambda a: jnp.arange(a.size, dtype=jnp.float32).reshape(a.shape), g.params)
    out = ng.remap_like(g, g2, tree)
    np.testing.assert_array_equal(out["d2"]["bias"], [0.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(out["out"]["kernel"], np.asarray(tree["out"]["kernel"])[[0, 2, 3, 4]])
    assert_consistent(g, g2)


def test_a_new_vertex_gets_zeros_and_a_kernel_resize_keeps_the_central_taps(key):
    inp = ng.input_vertex("in", shape=(6, 6, 2))
    c = ng.vertex("c", ng.Conv(3, 3), inp)
    pool = ng.vertex("gp", ng.GlobalPool("mean"), c)
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(2), pool))
    g2 = ng.insert_vertex(g, after="c", op=ng.Conv(3, 1), name="c2")
    g3 = ng.resize_kernel(g2, "c", 5)
    out = ng.remap_like(g, g3, ones_like(g))
    assert np.all(np.asarray(out["c2"]["kernel"]) == 0) and np.all(np.asarray(out["c2"]["bias"]) == 0)
    taps = np.asarray(out["c"]["kernel"])[:, :, 0, 0]
    want = np.zeros((5, 5))
    want[1:4, 1:4] = 1
    np.testing.assert_array_equal(taps, want)
    assert assert_consistent(g, g3) == (9 * 2 * 3 + 3 + 3 * 2 + 2, 25 * 6 - 54 + 3 * 3 + 3)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.data())
def test_random_surgery_chains_replay_exactly_on_any_tree(graph, data):
    start = graph
    for step in range(data.draw(st.integers(1, 4))):
        new = one_step(data, graph, step)
        assert_consistent(graph, new, f"step {step}")  # one surgery
        graph = new
    assert_consistent(start, graph, "chain")  # the whole chain, back to the first graph
    # Arrays of vertices no surgery touched are the same objects: all of them kept.
    for v, arrays in graph.params.items():
        for p, arr in arrays.items():
            if v in start.params and start.params[v].get(p) is arr:
                assert np.all(np.asarray(ng.remap_like(start, graph, ones_like(start))[v][p]) == 1)


MUTATION = ng.VertexMutation(
    ng.MutationChain(
        ng.MutationProbability(ng.NoutMutation(-0.5, 0.5), 0.5),
        ng.MutationProbability(ng.AddVertexMutation(ng.ArchSpace(ng.DenseSpace(range(1, 6), "relu"))), 0.3),
        ng.MutationProbability(ng.RemoveVertexMutation(), 0.3),
        ng.MutationProbability(ng.AddEdgeMutation(0.5), 0.3),
        ng.MutationProbability(ng.RemoveEdgeMutation(), 0.3),
    )
)
SPACE = ng.ArchSpaceChain(
    ng.RepeatArchSpace(ng.VertexSpace(ng.DenseSpace(range(2, 9), ["relu", "identity"])), range(1, 3)),
    ng.ForkArchSpace(ng.VertexSpace(ng.DenseSpace(range(2, 6), "relu")), range(1, 3)),
    ng.ResidualArchSpace(ng.VertexSpace(ng.DenseSpace(range(2, 6), "relu"))),
    ng.VertexSpace(ng.DenseSpace(3, "identity"), shielded=True),
)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1))
def test_mutations_and_crossover_replay_exactly(seed):
    key = jax.random.key(seed)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    inp = ng.input_vertex("in", shape=(5,))
    a, b = ng.sample_graph(k1, SPACE, inp), ng.sample_graph(k2, SPACE, inp)
    a2 = MUTATION(k3, a)
    assert_consistent(a, a2, "mutation")
    c1, c2 = ng.VertexCrossover(ng.CrossoverSwap())(k4, (a2, b))
    assert_consistent(a2, c1, "crossover child 1")
    assert_consistent(b, c2, "crossover child 2")
    assert_consistent(a, c1, "mutation then crossover")


def test_an_optax_state_follows_surgery_and_training_continues(key):
    g = dense_graph(key)
    x = jax.random.normal(key, (16, 3))
    y = jnp.arange(16) % 2

    def loss(params, graph):
        logits = ng.combine(graph.replace(params=params), graph)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    opt = optax.adam(1e-2)
    state = opt.init(g.params)
    for _ in range(3):
        grads = jax.grad(loss)(g.params, g)
        updates, state = opt.update(grads, state, g.params)
        g = g.replace(params=optax.apply_updates(g.params, updates))
    g2 = ng.delta_nout(g, {"d2": +3})
    state2 = ng.remap_opt_state(g, g2, state)
    adam = state2[0]
    assert int(adam.count) == 3
    mu_old, mu_new = np.asarray(state[0].mu["d2"]["kernel"]), np.asarray(adam.mu["d2"]["kernel"])
    np.testing.assert_array_equal(mu_new[:, :5], mu_old)
    assert np.all(mu_new[:, 5:] == 0) and np.all(np.asarray(adam.nu["out"]["kernel"])[5:] == 0)
    assert np.any(mu_old != 0)
    grads = jax.grad(loss)(g2.params, g2)
    updates, _ = opt.update(grads, state2, g2.params)  # the state fits the new graph
    assert jax.tree_util.tree_structure(updates) == jax.tree_util.tree_structure(g2.params)


def test_same_arrays_or_same_spec_take_the_tree_as_it_is_and_unrelated_graphs_are_refused(key):
    g = dense_graph(key)
    tree = ones_like(g)
    assert ng.remap_like(g, g.replace(spec=g.spec), tree) is tree
    trained = jax.tree_util.tree_map(lambda a: a + 1, g)  # a new graph of the same spec
    assert ng.remap_like(g, trained, tree) is tree
    grown = ng.delta_nout(g, {"d1": 1})
    with pytest.raises(ValueError, match="not made from old_graph"):
        ng.remap_like(g, pickle.loads(pickle.dumps(grown)), tree)
    with pytest.raises(ValueError, match="not made from old_graph"):
        ng.remap_like(ng.delta_nout(g, {"d2": 1}), grown, ones_like(ng.delta_nout(g, {"d2": 1})))
    with pytest.raises(ValueError, match=r"tree\['d1'\]\['kernel'\] has shape \(3, 5\)"):
        ng.remap_like(g, grown, ones_like(grown))
    with pytest.raises(TypeError, match=r"old_graph must be an ng\.Graph"):
        ng.remap_like(g.params, grown, tree)


def test_a_pickled_graph_carries_no_record_of_this_process(key):
    g = dense_graph(key)
    grown = ng.delta_nout(g, {"d1": 1})
    copy = pickle.loads(pickle.dumps(grown))
    assert "_ng_provenance" not in copy.__dict__
    np.testing.assert_array_equal(copy.params["d1"]["kernel"], grown.params["d1"]["kernel"])


def test_a_state_made_for_partitions_trainable_half_follows_surgery(key):
    g = dense_graph(key)
    x, y = jax.random.normal(key, (8, 3)), jnp.arange(8) % 2

    def grads_for(graph):
        trainable, rest = ng.partition(graph)

        def loss(t):
            out, _ = ng.apply(ng.combine(t, rest), x, train=True)
            return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()

        return trainable, jax.grad(loss)(trainable)

    opt = optax.adam(1e-2)
    trainable, grads = grads_for(g)
    state = opt.init(trainable)
    _, state = opt.update(grads, state, trainable)
    g2 = ng.delta_nout(g, {"d1": 2})
    state2 = ng.remap_opt_state(g, g2, state)
    mu = state2[0].mu
    assert mu.spec == g2.spec and jax.tree_util.tree_leaves(mu.state) == []
    np.testing.assert_array_equal(np.asarray(mu.params["d1"]["kernel"])[:, :4], state[0].mu.params["d1"]["kernel"])
    assert np.all(np.asarray(mu.params["d1"]["kernel"])[:, 4:] == 0)
    trainable2, grads2 = grads_for(g2)
    updates, _ = opt.update(grads2, state2, trainable2)  # fits the new graph's trainable half
    assert updates.params["d2"]["kernel"].shape == (6, 5)
