import concurrent.futures
import dataclasses
import logging
import pickle
from typing import ClassVar

import jax
import numpy as np
import pytest

import naivega_jax as ng


def mlp(key, hidden):
    inp = ng.input_vertex("in", shape=(4,))
    d1 = ng.vertex("d1", ng.Dense(hidden, activation="relu"), inp)
    return ng.build_graph(jax.random.key(key), inputs=inp, outputs=ng.vertex("d2", ng.Dense(3), d1))


@pytest.fixture(scope="module")
def pop():
    return ng.Population([ng.Candidate(mlp(i, h), batch_size=i + 1) for i, h in enumerate((2, 3, 4, 5))])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 4)).astype(np.float32)
    return x, rng.integers(0, 3, 10)


@dataclasses.dataclass(frozen=True)
class Widen:
    target: ClassVar[str] = "graph"

    def __call__(self, key, graph):
        spec = graph.spec.replace_entries({"d1": (ng.Dense(graph.nout("d1") + 1, "relu"), ["in"])})
        return ng.graph.init_graph(key, spec)


@dataclasses.dataclass(frozen=True)
class FailOn:
    batch_size: int

    def __call__(self, key, candidate):
        if candidate.batch_size == self.batch_size:
            raise RuntimeError("boom")
        return candidate.replace(fitness=float(candidate.batch_size))


@dataclasses.dataclass(frozen=True)
class Returns:
    value: object

    def __call__(self, key, candidate):
        return candidate.replace(fitness=self.value)


@dataclasses.dataclass(frozen=True)
class KeyFitness:
    """Fitness = last word of the key, with the generation it saw recorded."""

    def __call__(self, key, candidate):
        return candidate.replace(
            fitness=float(jax.random.key_data(key)[-1]), info={**candidate.info, "saw": candidate.generation}
        )


def strategy():
    mutate = ng.EvolveCandidates(ng.MapCandidate(Widen()))
    return ng.CombinedEvolution(ng.EliteSelection(1), ng.SusSelection(3, mutate))


def test_generation_starts_at_1_and_evolve_increments_it(key, pop):
    # check 39
    assert pop.generation == 1
    pop2 = ng.evolve(key, ng.evolution.NoOpEvolution(), ng.SizeFitness(), pop)
    assert pop2.generation == 2
    assert ng.evolve(key, ng.evolution.NoOpEvolution(), pop2).generation == 3
    assert pop.generation == 1


def test_population_sequence_protocol_and_best(pop):
    scored = pop.replace(candidates=[c.replace(fitness=f) for c, f in zip(pop, (0.1, 0.8, None, 0.8))])
    assert len(scored) == 4 and scored[1] is scored.candidates[1] and list(scored) == list(scored.candidates)
    assert scored.best() is scored[1]
    assert scored.fitnesses == (0.1, 0.8, None, 0.8)
    with pytest.raises(ValueError, match="no member has a fitness"):
        pop.best()
    with pytest.raises(TypeError, match="member 1"):
        ng.Population([pop[0], "x"])
    with pytest.raises(ValueError, match="generation"):
        ng.Population(list(pop), generation=0)


def test_evaluate_scores_each_member_with_its_folded_key_and_generation(key, pop):
    scored = ng.evolution.evaluate(key, KeyFitness(), pop.replace(generation=5))
    expected = [float(jax.random.key_data(jax.random.fold_in(key, i))[-1]) for i in range(4)]
    assert scored.fitnesses == tuple(expected)
    assert all(c.generation == 5 and c.info == {"saw": 5} for c in scored)
    assert all(c.lineage[-1] == {"generation": 5, "event": "fitness", "fitness": f} for c, f in zip(scored, expected))
    assert pop.fitnesses == (None,) * 4


def test_evaluate_clears_old_notes_and_passes_the_parent_fitness_once(key, pop):
    c = pop[0].replace(info={"failure": "old", "parent_fitness": 10.0})
    scored = ng.evolution.evaluate(key, ng.EwmaFitness(Returns(20.0)), ng.Population([c]))
    assert scored[0].fitness == 15.0 and scored[0].info == {}


def test_a_failing_fitness_gets_the_invalid_fitness_and_a_reason(key, pop, caplog):
    with caplog.at_level(logging.WARNING, logger="naivega_jax"):
        scored = ng.evolution.evaluate(key, FailOn(2), pop, invalid_fitness=-1.0)
    assert scored.fitnesses == (1.0, -1.0, 3.0, 4.0)
    assert scored[1].info["failure"] == "RuntimeError: boom"
    assert scored[1].lineage[-1]["failure"] == "RuntimeError: boom"
    assert "boom" in caplog.text
    nan = ng.evolution.evaluate(key, Returns(float("nan")), pop)
    assert nan.fitnesses == (0.0,) * 4 and "not finite" in nan[0].info["failure"]
    assert "not a number" in ng.evolution.evaluate(key, Returns("high"), pop)[0].info["failure"]


def test_the_executor_hook_gives_the_same_population(key, pop):
    plain = ng.evolution.evaluate(key, KeyFitness(), pop)

    def backwards(fn, items):
        return [fn(item) for item in reversed(items)][::-1]

    assert ng.evolution.evaluate(key, KeyFitness(), pop, executor=backwards).fitnesses == plain.fitnesses
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        threaded = ng.evolution.evaluate(key, KeyFitness(), pop, executor=lambda fn, items: list(pool.map(fn, items)))
    assert threaded.fitnesses == plain.fitnesses
    with pytest.raises(ValueError, match="returned 3 results for 4"):
        ng.evolution.evaluate(key, KeyFitness(), pop, executor=lambda fn, items: [fn(i) for i in items[:3]])


def test_evolve_scores_with_the_first_half_of_the_key_then_evolves_with_the_second(key, pop, data):
    fitness = ng.AccuracyFitness(data, batch_size=4)
    k_fit, k_evo = jax.random.split(key)
    scored = ng.evolution.evaluate(k_fit, fitness, pop)
    direct = ng.evolve(key, strategy(), fitness, pop)
    two_step = ng.evolve(k_evo, strategy(), scored)
    assert [c.graph.spec for c in direct] == [c.graph.spec for c in two_step]
    assert direct.fitnesses == two_step.fitnesses
    assert direct[0].fitness == max(scored.fitnesses)  # the elite keeps its fitness
    assert direct.fitnesses[1:] == (None,) * 3


def test_three_generations_keep_elites_and_are_reproducible(key, pop, data):
    fitness = ng.AccuracyFitness(data, batch_size=4)

    def run(key):
        p, bests = pop, []
        for _ in range(3):
            key, sub = jax.random.split(key)
            p = ng.evolve(sub, strategy(), fitness, p)
            bests.append(p[0])
        return p, bests

    final, elites = run(key)
    assert final.generation == 4 and len(final) == 4
    assert all(e.fitness is not None for e in elites)
    assert [c.fitness is None for c in final] == [False, True, True, True]
    # an elite's fitness is its score in the generation it was selected from
    assert elites[-1].lineage[-1] == {"generation": 3, "event": "fitness", "fitness": elites[-1].fitness}
    # mutated members record what happened
    assert any(ev["event"] == "mutation" for c in final[1:] for ev in c.lineage)
    again, _ = run(key)
    assert [c.graph.spec for c in again] == [c.graph.spec for c in final]
    assert again.fitnesses == final.fitnesses
    for a, b in zip(again, final):
        for x, y in zip(jax.tree_util.tree_leaves(a.graph), jax.tree_util.tree_leaves(b.graph)):
            np.testing.assert_array_equal(x, y)


def test_evolve_argument_errors(key, pop):
    with pytest.raises(TypeError, match="takes"):
        ng.evolve(key, ng.evolution.NoOpEvolution())
    with pytest.raises(TypeError, match=r"ng\.Population"):
        ng.evolve(key, ng.evolution.NoOpEvolution(), list(pop))
    with pytest.raises(TypeError, match=r"ng\.Population"):
        ng.evolve(key, ng.evolution.NoOpEvolution(), ng.SizeFitness(), list(pop))
    with pytest.raises(ValueError, match="no fitness"):
        ng.evolve(key, ng.EliteSelection(1), pop)


def test_the_executor_gets_picklable_work(key, pop, data):
    shipped = []

    def via_pickle(fn, items):
        shipped.append(len(pickle.dumps((fn, items))))
        fn, items = pickle.loads(pickle.dumps((fn, items)))
        return [pickle.loads(pickle.dumps(fn(item))) for item in items]

    fitness = ng.AccuracyFitness(data, batch_size=4)
    remote = ng.evolution.evaluate(key, fitness, pop, executor=via_pickle)
    assert shipped and remote.fitnesses == ng.evolution.evaluate(key, fitness, pop).fitnesses
