import logging

import jax
import numpy as np
import pytest
from mutation_helpers import EntityProbe, VertexProbe, dense_chain, probed

import naivega_jax as ng
from naivega_jax.mutation._generic import utility_probabilities


def test_mutation_probability_scalar(key, mock_uniform):
    mock_uniform([0.2, 0.5, 0.1])
    probe = EntityProbe()
    m = ng.MutationProbability(probe, 0.3)
    seen = []
    for x in (1, 2, 3, 4):
        y, events = ng.mutation.record_events(m, key, x)
        assert y == x
        seen += probed(events)
    assert seen == [1, 3, 4]


def test_mutation_probability_vector_calls_once(key, mock_uniform):
    mock_uniform([0.2, 0.5, 0.1])
    m = ng.MutationProbability(VertexProbe(), 0.3)
    _, events = ng.mutation.record_events(m, key, None, [1, 2, 3, 4])
    assert probed(events) == [[1, 3, 4]]


def test_probability_int_is_percentage():
    assert ng.MutationProbability(EntityProbe(), 30).p == 0.3
    assert ng.MutationProbability(EntityProbe(), 1).p == 1.0
    assert ng.MutationProbability(EntityProbe(), 0).p == 0.0


@pytest.mark.parametrize("p", [-0.1, 1.5, 101, -3])
def test_probability_out_of_range_raises(p):
    with pytest.raises(ValueError, match="probability"):
        ng.MutationProbability(EntityProbe(), p)


def test_bad_wrapped_mutation_raises():
    with pytest.raises(TypeError, match="expected a mutation"):
        ng.MutationProbability(lambda k, x: x, 0.5)
    with pytest.raises(TypeError, match="probability"):
        ng.MutationProbability(EntityProbe(), "0.5")


def test_probability_zero_and_one(key):
    _, events = ng.mutation.record_events(ng.MutationProbability(EntityProbe(), 0.0), key, 7)
    assert probed(events) == []
    _, events = ng.mutation.record_events(ng.MutationProbability(EntityProbe(), 1.0), key, 7)
    assert probed(events) == [7]


def test_weighted_mutation_probability(key, mock_uniform):
    mock_uniform([0.5])
    m = ng.mutation.WeightedMutationProbability(EntityProbe(), lambda p: p)
    seen = []
    for x in (0.1, 0.6, 0.4, 0.9):
        seen += probed(ng.mutation.record_events(m, key, x)[1])
    assert seen == [0.6, 0.9]
    mv = ng.mutation.WeightedMutationProbability(VertexProbe(), lambda g, p: p)
    assert probed(ng.mutation.record_events(mv, key, None, [0.1, 0.6, 0.4, 0.9])[1]) == [[0.6, 0.9]]


def _utility_graph():
    g = dense_chain(jax.random.key(0), 3, 4, 3, 5, names=["v1", "v2", "v3"])
    table = {"v1": np.arange(1, 5.0), "v2": np.linspace(100, 300, 201), "v3": np.linspace(0.1, 0.5, 5)}
    return g, lambda graph, name: table.get(name)


@pytest.mark.parametrize("pbase", [0.05, 0.1, 0.3, 0.7, 0.9, 0.95])
def test_high_utility_probabilities(pbase):
    g, u = _utility_graph()
    p = utility_probabilities(g, ["v1", "v2", "v3"], pbase, 0.5, True, u)
    assert p[1] > p[0] > p[2]
    assert np.mean(p) == pytest.approx(pbase, rel=0.1)


@pytest.mark.parametrize("pbase", [0.05, 0.1, 0.3, 0.7, 0.9, 0.95])
def test_low_utility_probabilities(pbase):
    g, u = _utility_graph()
    p = utility_probabilities(g, ["v1", "v2", "v3"], pbase, 0.8, False, u)
    assert p[1] < p[0] < p[2]
    assert np.mean(p) == pytest.approx(pbase, rel=0.1)


def test_high_and_low_utility_mutation_probability(key, mock_uniform):
    g, u = _utility_graph()
    mock_uniform([0.15])
    high = ng.VertexMutation(ng.HighUtilityMutationProbability(VertexProbe(), 0.1, utility=u))
    assert probed(ng.mutation.record_events(high, key, g)[1]) == [["v2"]]
    low = ng.VertexMutation(ng.LowUtilityMutationProbability(VertexProbe(), 0.1, utility=u))
    assert probed(ng.mutation.record_events(low, key, g)[1]) == [["v1", "v3"]]


def test_utility_missing_gives_pbase():
    g, _ = _utility_graph()
    p = utility_probabilities(g, ["v1", "v2"], 0.3, 0.5, True, lambda graph, n: None)
    assert p.tolist() == [0.3, 0.3]


def test_utility_wrappers_need_vertex_level(key):
    with pytest.raises(TypeError, match="VertexMutation"):
        ng.HighUtilityMutationProbability(VertexProbe(), 0.1)(key, None)
    with pytest.raises(ValueError, match="spread"):
        ng.LowUtilityMutationProbability(VertexProbe(), 0.1, spread=0)


def test_mutation_chain_each_sees_every_element(key):
    m = ng.MutationChain(EntityProbe("a"), EntityProbe("b"), EntityProbe("c"))
    _, events = ng.mutation.record_events(m, key, 1)
    assert [e["mutation"] for e in events] == ["a", "b", "c"]
    mv = ng.MutationChain(VertexProbe("a"), VertexProbe("b"), VertexProbe("c"))
    _, events = ng.mutation.record_events(mv, key, None, [1, 2])
    assert [probed(events, t) for t in "abc"] == [[[1, 2]]] * 3


def test_mutation_chain_rejects_mixed_and_empty():
    with pytest.raises(ValueError, match="same thing"):
        ng.MutationChain(EntityProbe(), VertexProbe())
    with pytest.raises(ValueError, match="at least one"):
        ng.MutationChain()


def test_mutation_chain_forwards_target():
    assert ng.MutationChain(EntityProbe()).target == "batch_size"
    assert ng.MutationProbability(ng.LearningRateMutation(), 0.2).target == "optimiser"
    assert ng.MutationProbability(VertexProbe(), 0.2).vertex_level


def test_mutation_filter(key):
    m = ng.MutationFilter(lambda i: i > 3, EntityProbe())
    assert probed(ng.mutation.record_events(m, key, 1)[1]) == []
    assert probed(ng.mutation.record_events(m, key, 4)[1]) == [4]
    mv = ng.MutationFilter(lambda g, i: i > 3, VertexProbe())
    assert probed(ng.mutation.record_events(mv, key, None, [1, 2, 3, 4, 5])[1]) == [[4, 5]]


def test_log_mutation(key, caplog):
    inner = ng.LogMutation(lambda i: f"Inner {i}", EntityProbe())
    m = ng.LogMutation(lambda i: f"Mutate {i}", inner)
    with caplog.at_level(logging.INFO, logger="naivega_jax.mutation"):
        assert m(key, 17) == 17
    assert [r.getMessage() for r in caplog.records] == ["Mutate 17", "   Inner 17"]


def test_log_mutation_vector(key, caplog):
    m = ng.LogMutation(lambda g, i: f"Mutate {i}", VertexProbe())
    with caplog.at_level(logging.INFO, logger="naivega_jax.mutation"):
        _, events = ng.mutation.record_events(m, key, None, [17, 21])
    assert [r.getMessage() for r in caplog.records] == ["Mutate 17", "Mutate 21"]
    assert probed(events) == [[17, 21]]


def test_record_mutation(key, mock_uniform):
    mock_uniform([0.2, 0.5, 0.1])
    rec = ng.mutation.RecordMutation(ng.MutationProbability(VertexProbe(), 0.3))
    r = rec.record(key, "g", [1, 2, 3, 4])
    assert r.result == "g"
    assert r.mutated == (1, 2, 3, 4)
    assert probed(r.events) == [[1, 3, 4]]
    r = ng.mutation.RecordMutation(EntityProbe()).record(key, 5)
    assert r.mutated == (5,) and probed(r.events) == [5]


def test_record_events_nest(key):
    def outer():
        _, inner = ng.mutation.record_events(EntityProbe("in"), key, 1)
        assert len(inner) == 1
        return EntityProbe("out")(key, 2)

    _, events = ng.mutation.record_events(outer)
    assert [e["mutation"] for e in events] == ["in", "out"]


def test_no_recording_outside(key):
    assert EntityProbe()(key, 3) == 3


def test_mutation_leaves():
    m = ng.MutationChain(
        ng.MutationProbability(VertexProbe("a"), 0.5), ng.LogMutation(str, ng.MutationFilter(bool, VertexProbe("b")))
    )
    assert [leaf.tag for leaf in ng.mutation.mutation_leaves(m)] == ["a", "b"]
    assert ng.mutation.mutation_leaves(ng.VertexMutation(m)) == ng.mutation.mutation_leaves(m)


def test_wrappers_are_hashable_and_comparable():
    a = ng.MutationProbability(ng.TrainBatchSizeMutation(-0.1, 0.1), 0.3)
    b = ng.MutationProbability(ng.TrainBatchSizeMutation(0.1, -0.1), 30)
    assert a == b and hash(a) == hash(b)
    assert "MutationProbability" in repr(a)


def test_default_utility_is_weight_magnitude(key):
    inp = ng.input_vertex("in", shape=(4, 4, 2))
    c1 = ng.vertex("c1", ng.Conv(3, 3), inp)
    p = ng.vertex("p", ng.MaxPool(2), c1)
    c2 = ng.vertex("c2", ng.Conv(3, 3), p)
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("o", ng.Conv(2, 1), c2))
    params = dict(g.params)
    params["c2"] = {**params["c2"], "kernel": params["c2"]["kernel"] * 100}
    g = g.replace(params=params)
    m = ng.HighUtilityMutationProbability(VertexProbe(), 0.3)
    p_c1, p_pool, p_c2 = m.probabilities(g, ["c1", "p", "c2"])
    assert p_c2 > p_c1 and p_pool == 0.3
    low = ng.LowUtilityMutationProbability(VertexProbe(), 0.3).probabilities(g, ["c1", "p", "c2"])
    assert low[2] < low[0] and low[1] == 0.3
