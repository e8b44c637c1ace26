"""NaiveGAflux's quick tutorial (test/examples/quicktutorial.jl) and mutation examples, with this library's API."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax

import naivega_jax as ng

NLABELS, NINPUTS = 3, 5
LAYER = ng.VertexSpace(ng.DenseSpace(range(3, 11), ["identity", "relu", "elu", "selu"]))
OUT = ng.VertexSpace(ng.DenseSpace(NLABELS, "identity"), shielded=True)


def mp(m, p):
    return ng.VertexMutation(ng.MutationProbability(m, p))


MUTATION = ng.MutationChain(
    mp(ng.NoutMutation(-0.2, 0.2), 0.6), mp(ng.RemoveVertexMutation(), 0.4), mp(ng.AddVertexMutation(LAYER), 0.4)
)


def test_quick_tutorial():
    key = jax.random.key(0)
    space = ng.ArchSpaceChain(ng.RepeatArchSpace(LAYER, range(1, 4)), OUT)
    keys = jax.random.split(key, 8)
    models = [ng.sample_graph(k, space, ng.input_vertex("input", shape=(NINPUTS,))) for k in keys[:5]]
    assert {len(m.vertex_names) for m in models} <= {3, 4, 5}
    population = ng.Population([ng.Candidate(m, optimiser=ng.Adam(), batch_size=4) for m in models])
    assert population.generation == 1

    xs = jax.random.normal(keys[5], (8, NINPUTS))
    ys = jax.random.randint(keys[6], (8,), 0, NLABELS)
    fitness = ng.TrainThenFitness(
        (xs[:4], ys[:4]),
        fitness=ng.AccuracyFitness((xs[4:], ys[4:])),
        loss=optax.softmax_cross_entropy_with_integer_labels,
    )
    selection = ng.CombinedEvolution(
        ng.EliteSelection(2), ng.SusSelection(3, ng.EvolveCandidates(ng.MapCandidate(MUTATION)))
    )
    new = ng.evolve(keys[7], selection, fitness, population)
    assert new.generation == 2 and len(new) == 5
    newer = ng.evolve(jax.random.fold_in(keys[7], 1), selection, fitness, new)
    assert newer.generation == 3
    for cand in newer:
        ng.validate_graph(cand.graph)
        assert cand.graph(xs).shape == (8, NLABELS)
        assert cand.graph.spec[cand.graph.output_names[0]].shield == ()
    assert {c.graph.spec for c in newer} != {m.spec for m in models}


def test_mutation_examples():
    key = jax.random.key(3)
    inp = ng.input_vertex("in", shape=(3,))
    l1 = ng.vertex("l1", ng.Dense(4), inp)
    l2 = ng.vertex("l2", ng.Dense(5), l1)
    out = ng.vertex("out", ng.Dense(10), l2, shield=True)
    graph = ng.build_graph(key, inputs=inp, outputs=out)
    x = jnp.ones((1, 3))

    nout = ng.VertexMutation(ng.NoutMutation(-0.5, 0.5))
    g = nout(key, graph)
    assert g.nout("out") == 10 and (g.nout("l1"), g.nout("l2")) != (4, 5)
    g = ng.MutationProbability(ng.VertexMutation(ng.NoutMutation(-0.5, 0.5)), 0.98)(jax.random.key(4), g)
    assert g(x).shape == (1, 10)
    first = ng.VertexMutation(ng.MutationFilter(lambda gr, n: n == "l1", ng.RemoveVertexMutation()))
    g = first(key, g)
    assert g.vertex_names == ("in", "l2", "out") and g.nin("l2") == (3,)
    addmut = ng.AddVertexMutation(ng.VertexSpace(ng.DenseSpace(5, "identity")), weight_init="identity")
    g2 = ng.VertexMutation(ng.MutationChain(addmut, ng.NoutMutation(-0.8, 0.8)))(key, g)
    assert len(g2.vertex_names) == 4 and g2(x).shape == (1, 10)


def test_map_candidate_with_every_kind_of_mutation_and_lineage_events():
    key = jax.random.key(1)
    graph = ng.sample_graph(key, ng.ArchSpaceChain(LAYER, LAYER, OUT), ng.input_vertex("in", shape=(NINPUTS,)))
    cand = ng.Candidate(graph, optimiser=ng.Adam(1e-3), batch_size=32)
    mc = ng.MapCandidate(MUTATION, ng.LearningRateMutation(), ng.TrainBatchSizeMutation(-0.2, 0.2))
    new, events = ng.mutation.record_events(mc, key, cand)
    assert new.optimiser.learning_rate != 1e-3 and new.batch_size != 32
    json.dumps(events)
    kinds = {e["mutation"] for e in events}
    assert {"LearningRateMutation", "TrainBatchSizeMutation"} <= kinds
    c1, c2 = ng.MapCandidate(
        ng.VertexCrossover(ng.CrossoverSwap()), ng.LearningRateCrossover(), ng.mutation.BatchSizeCrossover()
    )(key, (cand, cand.replace(optimiser=ng.SGD(0.1), batch_size=8)))
    assert (c1.batch_size, c2.batch_size) == (8, 32)
    assert np.isclose(c1.optimiser.learning_rate, 0.1) and np.isclose(c2.optimiser.learning_rate, 1e-3)
