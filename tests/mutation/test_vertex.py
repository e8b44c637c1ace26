import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mutation_helpers import VertexProbe, dense_chain, probed

import naivega_jax as ng


def test_vertex_mutation_visits_all_but_input(key):
    g = dense_chain(key, 4, 3, 4, 5)
    _, events = ng.mutation.record_events(ng.VertexMutation(VertexProbe()), key, g)
    assert probed(events) == [list(g.vertex_names[1:])]


def _shielded_graph(key, shield):
    inp = ng.input_vertex("in", shape=(4,))
    d1 = ng.vertex("d1", ng.Dense(3), inp)
    d2 = ng.vertex("d2", ng.Dense(4), d1, shield=shield)
    f = ng.vertex("f", ng.Flatten(), d2)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("d3", ng.Dense(5), f))


def test_shielded_and_immutable_vertices_are_skipped(key):
    g = _shielded_graph(key, True)
    _, events = ng.mutation.record_events(ng.VertexMutation(VertexProbe()), key, g)
    assert probed(events) == [["d1", "d3"]]


def test_shield_allows_listed_leaf_types(key):
    g = _shielded_graph(key, [VertexProbe])
    _, events = ng.mutation.record_events(ng.VertexMutation(ng.MutationProbability(VertexProbe(), 1.0)), key, g)
    assert probed(events) == [["d1", "d2", "d3"]]
    # one leaf type that is not allowed is enough to skip the vertex
    chain = ng.MutationChain(VertexProbe(), ng.ActivationFunctionMutation("relu"))
    _, events = ng.mutation.record_events(ng.VertexMutation(chain), key, g)
    assert probed(events) == [["d1", "d3"]]


def test_shield_by_base_class(key):
    g = _shielded_graph(key, ["Mutation"])
    assert ng.mutation.allow_mutation(g, "d2", VertexProbe())
    assert not ng.mutation.allow_mutation(g, "d2")


def test_custom_selection(key):
    g = dense_chain(key, 4, 3, 4, 5)
    m = ng.VertexMutation(VertexProbe(), selection=ng.mutation.AllVertices())
    assert probed(ng.mutation.record_events(m, key, g)[1]) == [list(g.vertex_names)]


def test_vertex_mutation_rejects_bad_configuration(key):
    with pytest.raises(TypeError, match="vertex-level"):
        ng.VertexMutation(ng.LearningRateMutation())
    with pytest.raises(TypeError, match="selection"):
        ng.VertexMutation(VertexProbe(), selection=3)
    with pytest.raises(TypeError, match=r"ng\.Graph"):
        ng.VertexMutation(VertexProbe())(key, "graph")


def test_vertex_level_mutation_called_without_names(key):
    g = dense_chain(key, 4, 3)
    with pytest.raises(TypeError, match="VertexMutation"):
        ng.ActivationFunctionMutation("relu")(key, g, None)


def _all_kinds(key):
    inp = ng.input_vertex("in", shape=(6, 6, 2))
    c = ng.vertex("c", ng.Conv(3, (3, 3)), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), c)
    p = ng.vertex("p", ng.MaxPool(2), bn)
    gp = ng.vertex("gp", ng.GlobalPool(), p)
    d = ng.vertex("d", ng.Dense(4), gp)
    return ng.build_graph(key, inputs=inp, outputs=d)


def test_activation_function_mutation(key):
    g = _all_kinds(key)
    g2 = ng.VertexMutation(ng.ActivationFunctionMutation("elu"))(key, g)
    assert [getattr(g2.op(n), "activation", None) for n in g2.vertex_names] == [
        None,
        "elu",
        "elu",
        None,
        None,
        "elu",
    ]
    # weights kept, the function is the one with the new activations
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: bool(jnp.all(a == b)), g.params, g2.params))
    x = jax.random.normal(key, (2, 6, 6, 2))
    assert not np.allclose(g(x), g2(x))
    ng.validate_graph(g2)


def test_activation_function_mutation_random_choice(key):
    g = dense_chain(key, 3, *([4] * 12))
    acts = ("relu", "tanh", "sigmoid")
    g2 = ng.VertexMutation(ng.ActivationFunctionMutation(*acts))(key, g)
    seen = {g2.op(n).activation for n in g2.vertex_names[1:]}
    assert seen == set(acts)
    assert ng.VertexMutation(ng.ActivationFunctionMutation(*acts))(key, g).spec == g2.spec


def test_activation_function_mutation_bad_configuration():
    with pytest.raises(ValueError, match="at least one"):
        ng.ActivationFunctionMutation()
    with pytest.raises(ng.GraphError, match="unknown activation"):
        ng.ActivationFunctionMutation("relu", "nope")
