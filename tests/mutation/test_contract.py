"""Every graph mutation, on every kind of graph: the result validates, computes with the same output shape, keeps
shielded vertices, leaves its input untouched, is a function of the key, and probability 0 is the identity."""

import dataclasses

import jax
import pytest
from mutation_helpers import conv_graph, dense_graph, example_input, fork_graph, host_copy, residual_graph, tree_equal

import naivega_jax as ng

DENSE_SPACE = ng.ArchSpace(ng.DenseSpace(range(2, 9), ["relu", "identity"]))
CONV_SPACE = ng.ArchSpace(ng.ConvSpace(range(2, 9), [1, 3], activations="relu"))

LEAVES = {
    "nout": ng.NoutMutation(-0.5, 0.5),
    "add_dense": ng.AddVertexMutation(DENSE_SPACE),
    "add_conv": ng.AddVertexMutation(CONV_SPACE),
    "add_bn": ng.AddVertexMutation(ng.ArchSpace(ng.BatchNormSpace("relu"))),
    "remove_vertex": ng.RemoveVertexMutation(),
    "add_edge": ng.AddEdgeMutation(0.5),
    "remove_edge": ng.RemoveEdgeMutation(),
    "kernel": ng.KernelSizeMutation(2),
    "activation": ng.ActivationFunctionMutation("relu", "tanh", "elu"),
}
LEAVES["chain"] = ng.MutationChain(*(ng.MutationProbability(m, 0.5) for m in LEAVES.values()))
GRAPHS = {"dense": dense_graph, "conv": conv_graph, "fork": fork_graph, "residual": residual_graph}


@pytest.fixture(scope="module")
def graphs():
    return {name: f(jax.random.key(7)) for name, f in GRAPHS.items()}


def _op_config(op):
    """The op without its size, to compare a shielded vertex's op before and after a size change."""
    return dataclasses.replace(op, nout=1) if hasattr(op, "nout") else op


@pytest.mark.parametrize("graph_name", list(GRAPHS))
@pytest.mark.parametrize("leaf", list(LEAVES))
def test_graph_mutation_contract(graphs, graph_name, leaf):
    g = graphs[graph_name]
    before = host_copy((g.params, g.state))
    spec = g.spec
    m = ng.VertexMutation(LEAVES[leaf])
    key = jax.random.key(3)

    g2 = m(key, g)

    ng.validate_graph(g2)
    x = example_input(g)
    assert g2(x).shape == g(x).shape
    assert g2.input_names == g.input_names and len(g2.output_names) == len(g.output_names)
    for v in spec.vertices:
        if v.shield is not None:
            assert v.name in g2.spec, f"shielded {v.name} was removed"
            assert g2.spec[v.name].shield == v.shield
            assert _op_config(g2.op(v.name)) == _op_config(v.op)
    assert g.spec == spec and tree_equal(before, (g.params, g.state)), "the input graph changed"
    again = m(key, g)
    assert again.spec == g2.spec and tree_equal((again.params, again.state), (g2.params, g2.state))
    assert ng.VertexMutation(ng.MutationProbability(LEAVES[leaf], 0.0))(key, g) is g


def test_mutations_change_something(graphs):
    """Guards against a contract test that passes because nothing happens."""
    key = jax.random.key(3)
    changed = {
        leaf for leaf, m in LEAVES.items() for g in graphs.values() if ng.VertexMutation(m)(key, g).spec != g.spec
    }
    assert changed == set(LEAVES)


CROSSOVERS = {
    "swap": ng.VertexCrossover(ng.CrossoverSwap()),
    "swap_deviation": ng.VertexCrossover(ng.MutationProbability(ng.CrossoverSwap.with_deviation(0.2), 0.5)),
}


@pytest.mark.parametrize("graph_name", list(GRAPHS))
@pytest.mark.parametrize("name", list(CROSSOVERS))
def test_graph_crossover_contract(graphs, graph_name, name):
    g1 = graphs[graph_name]
    g2 = ng.VertexMutation(ng.NoutMutation(-0.3, 0.3))(jax.random.key(11), GRAPHS[graph_name](jax.random.key(8)))
    parents = (g1, g2)
    before = host_copy([(g.params, g.state) for g in parents])
    specs = [g.spec for g in parents]
    c = CROSSOVERS[name]
    key = jax.random.key(5)

    children = c(key, parents)

    for parent, child in zip(parents, children):
        ng.validate_graph(child)
        x = example_input(parent)
        assert child(x).shape == parent(x).shape
        assert child.input_names == parent.input_names and len(child.output_names) == len(parent.output_names)
        for v in parent.spec.vertices:
            if v.shield is not None:
                assert v.name in child.spec and child.spec[v.name].shield == v.shield
    assert [g.spec for g in parents] == specs
    assert tree_equal(before, [(g.params, g.state) for g in parents]), "a parent changed"
    again = c(key, parents)
    assert all(a.spec == b.spec and tree_equal(a.params, b.params) for a, b in zip(again, children))
    off = ng.VertexCrossover(ng.MutationProbability(ng.CrossoverSwap(), 0.0))
    assert all(a is b for a, b in zip(off(key, parents), parents))


def test_crossover_changes_something(graphs):
    changed = set()
    for graph_name, f in GRAPHS.items():
        g1, g2 = graphs[graph_name], f(jax.random.key(8))
        children = CROSSOVERS["swap"](jax.random.key(5), (g1, g2))
        if all(c.spec != g.spec or not tree_equal(c.params, g.params) for c, g in zip(children, (g1, g2))):
            changed.add(graph_name)
    assert changed == set(GRAPHS)
