import collections
import dataclasses

import jax
import numpy as np
import pytest

import naivega_jax as ng


@pytest.fixture(scope="module")
def graph():
    inp = ng.input_vertex("in", shape=(2,))
    return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))


def population(graph, fitnesses):
    # batch_size doubles as an id, so tests can see which member was picked
    return [ng.Candidate(graph, batch_size=i + 1, fitness=f) for i, f in enumerate(fitnesses)]


def ids(cands):
    return [c.batch_size - 1 for c in cands]


def keys(n):
    return [jax.random.key(i) for i in range(n)]


def test_noop_and_after_evolution(key, graph):
    pop = population(graph, [1.0, 2.0])
    assert ng.evolution.NoOpEvolution()(key, pop) == pop
    assert ids(ng.AfterEvolution(ng.evolution.NoOpEvolution(), lambda cs: cs[::-1])(key, pop)) == [1, 0]


def test_elite_selection_keeps_the_best_in_order_with_their_fitness(key, graph):
    pop = population(graph, [0.3, 0.9, 0.1, 0.9, 0.5])
    elites = ng.EliteSelection(3)(key, pop)
    assert ids(elites) == [1, 3, 4]
    assert [c.fitness for c in elites] == [0.9, 0.9, 0.5]
    assert all(e is pop[i] for e, i in zip(elites, [1, 3, 4]))
    assert ids(ng.EliteSelection(10)(key, pop)) == [1, 3, 4, 0, 2]
    assert ids(
        ng.EliteSelection(2, ng.AfterEvolution(ng.evolution.NoOpEvolution(), lambda cs: cs[::-1]))(key, pop)
    ) == [3, 1]


def test_sus_counts_are_floor_or_ceil_of_the_expected(graph):
    fitnesses = [1.0, 2.0, 3.0, 4.0, 0.0]
    pop = population(graph, fitnesses)
    expected = 10 * np.array(fitnesses) / sum(fitnesses)  # 1, 2, 3, 4, 0
    for k in keys(5):
        counts = collections.Counter(ids(ng.SusSelection(10)(k, pop)))
        assert [counts[i] for i in range(5)] == expected.tolist()
    expected = 7 * np.array(fitnesses) / sum(fitnesses)
    seen = set()
    for k in keys(20):
        counts = collections.Counter(ids(ng.SusSelection(7)(k, pop)))
        got = np.array([counts[i] for i in range(5)])
        assert np.all(got >= np.floor(expected)) and np.all(got <= np.ceil(expected)) and got.sum() == 7
        seen.add(tuple(got))
    assert len(seen) > 1  # the start point is random


def test_sus_is_deterministic_and_passes_the_selection_on(key, graph):
    pop = population(graph, [1.0, 2.0, 3.0])
    assert ids(ng.SusSelection(5)(key, pop)) == ids(ng.SusSelection(5)(key, pop))
    rev = ng.AfterEvolution(ng.evolution.NoOpEvolution(), lambda cs: cs[::-1])
    assert ids(ng.SusSelection(5, rev)(key, pop)) == ids(ng.SusSelection(5)(key, pop))[::-1]


def test_sus_all_zero_fitness_samples_uniformly(key, graph):
    assert sorted(ids(ng.SusSelection(3)(key, population(graph, [0.0, 0.0, 0.0])))) == [0, 1, 2]


def test_sus_rejects_negative_and_missing_fitness(key, graph):
    with pytest.raises(ValueError, match=">= 0"):
        ng.SusSelection(2)(key, population(graph, [1.0, -0.5]))
    with pytest.raises(ValueError, match="candidate 1 has no fitness"):
        ng.SusSelection(2)(key, population(graph, [1.0, None]))
    with pytest.raises(ValueError, match="non-negative int"):
        ng.SusSelection(-1)


def test_tournament_with_p_1_over_the_whole_population_always_picks_the_best(graph):
    pop = population(graph, [0.3, 0.9, 0.1, 0.5])
    for k in keys(5):
        assert ids(ng.TournamentSelection(3, k=4, p=1.0)(k, pop)) == [1, 1, 1]


def test_tournament_with_p_1_and_disjoint_pairs_never_picks_the_worst(graph):
    # 2 tournaments of 2 from 4 candidates: one shuffle, two disjoint pairs
    pop = population(graph, [0.3, 0.9, 0.1, 0.5])
    for k in keys(20):
        winners = ids(ng.TournamentSelection(2, k=2, p=1.0)(k, pop))
        assert 1 in winners and 2 not in winners and len(set(winners)) == 2


def test_tournament_p_half_weights_are_p_times_1_minus_p_powers(key, graph):
    # k=2, p=0.5: weights (0.5, 0.25); the best wins when 0.5 u1 > 0.25 u2, probability 3/4
    pop = population(graph, [0.2, 0.8])
    winners = ids(ng.TournamentSelection(4000, k=2, p=0.5)(key, pop))
    assert abs(winners.count(1) / 4000 - 0.75) < 0.03


def test_tournament_is_deterministic(key, graph):
    pop = population(graph, [0.3, 0.9, 0.1, 0.5, 0.7])
    s = ng.TournamentSelection(6, k=3, p=0.7)
    assert ids(s(key, pop)) == ids(s(key, pop))
    assert any(ids(s(k, pop)) != ids(s(key, pop)) for k in keys(5))


def test_tournament_rejects_bad_p_and_k():
    with pytest.raises(ValueError, match="p must"):
        ng.TournamentSelection(2, k=2, p=1.5)
    with pytest.raises(ValueError, match="k must"):
        ng.TournamentSelection(2, k=0)


def test_combined_evolution_concatenates_outputs_on_the_full_population(key, graph):
    pop = population(graph, [0.3, 0.9, 0.1, 0.5])
    out = ng.CombinedEvolution(ng.EliteSelection(1), ng.EliteSelection(2), ng.evolution.NoOpEvolution())(key, pop)
    assert ids(out) == [1, 1, 3, 0, 1, 2, 3]


def test_evolution_chain_applies_in_order(key, graph):
    pop = population(graph, [0.3, 0.9, 0.1, 0.5])
    rev = ng.AfterEvolution(ng.evolution.NoOpEvolution(), lambda cs: cs[::-1])
    assert ids(ng.EvolutionChain(ng.EliteSelection(3), rev)(key, pop)) == [0, 3, 1]
    assert ids(
        ng.EvolutionChain(rev, ng.AfterEvolution(ng.evolution.NoOpEvolution(), lambda cs: cs[:1]))(key, pop)
    ) == [3]


def test_pair_candidates_pairs_neighbours_pads_and_truncates(key, graph):
    swap = ng.EvolveCandidates(lambda k, pair: (pair[1], pair[0]))
    assert ids(ng.PairCandidates(swap)(key, population(graph, [1.0] * 4))) == [1, 0, 3, 2]
    assert ids(ng.PairCandidates(swap)(key, population(graph, [1.0] * 5))) == [1, 0, 3, 2, 0]
    with pytest.raises(TypeError, match="pairs"):
        ng.PairCandidates(ng.EvolveCandidates(lambda k, pair: pair[0]))(key, population(graph, [1.0] * 2))


def test_shuffle_is_a_deterministic_permutation(key, graph):
    pop = population(graph, [1.0] * 8)
    out = ids(ng.ShuffleCandidates()(key, pop))
    assert sorted(out) == list(range(8))
    assert out == ids(ng.ShuffleCandidates()(key, pop))
    assert len({tuple(ids(ng.ShuffleCandidates()(k, pop))) for k in keys(5)}) > 1


def test_evolve_candidates_folds_the_index_into_the_key(key, graph):
    def record(k, c):
        return c.replace(info={"key": jax.random.key_data(k).tolist()})

    out = ng.EvolveCandidates(record)(key, population(graph, [1.0] * 3))
    assert [c.info["key"] for c in out] == [jax.random.key_data(jax.random.fold_in(key, i)).tolist() for i in range(3)]


def test_strategies_do_not_change_their_input(key, graph):
    pop = population(graph, [0.3, 0.9, 0.1, 0.5])
    before = list(pop)
    strategy = ng.CombinedEvolution(
        ng.EliteSelection(1),
        ng.SusSelection(2, ng.ShuffleCandidates()),
        ng.TournamentSelection(2, 2, 0.8, ng.EvolveCandidates(lambda k, c: c.replace(fitness=None))),
    )
    out = strategy(key, pop)
    assert len(out) == 5 and out[-1].fitness is None
    assert pop == before and [c.fitness for c in pop] == [0.3, 0.9, 0.1, 0.5]


def test_strategies_are_frozen_and_comparable():
    s = ng.CombinedEvolution(ng.EliteSelection(2), ng.SusSelection(3))
    assert s == ng.CombinedEvolution(ng.EliteSelection(2), ng.SusSelection(3))
    assert hash(s) == hash(ng.CombinedEvolution(ng.EliteSelection(2), ng.SusSelection(3)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.evos = ()
    with pytest.raises(TypeError, match="strategy"):
        ng.EvolutionChain(ng.EliteSelection(1), 3)
