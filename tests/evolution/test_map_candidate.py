import dataclasses
import json
from typing import ClassVar

import jax
import pytest

import naivega_jax as ng


def mlp(key=0, hidden=4):
    inp = ng.input_vertex("in", shape=(3,))
    d1 = ng.vertex("d1", ng.Dense(hidden, activation="relu"), inp)
    return ng.build_graph(jax.random.key(key), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))


def key_bits(key):
    return jax.random.key_data(key).tolist()


@dataclasses.dataclass(frozen=True)
class Widen:
    """Test graph mutation: d1 gets `delta` more neurons (fresh parameters; weight keeping is not tested here)."""

    delta: int = 1
    target: ClassVar[str] = "graph"

    def __call__(self, key, graph):
        spec = graph.spec.replace_entries({"d1": (ng.Dense(graph.nout("d1") + self.delta, "relu"), ["in"])})
        return ng.graph.init_graph(key, spec)


@dataclasses.dataclass(frozen=True)
class InsertAfterD1:
    target: ClassVar[str] = "graph"

    def __call__(self, key, graph):
        spec = graph.spec.replace_entries({"d1b": (ng.Dense(5), ["d1"]), "d2": (ng.Dense(2), ["d1b"])})
        return ng.graph.init_graph(key, spec)


@dataclasses.dataclass(frozen=True)
class ScaleLr:
    factor: float
    target: ClassVar[str] = "optimiser"

    def __call__(self, key, opt):
        return {"lr": opt["lr"] * self.factor}


@dataclasses.dataclass(frozen=True)
class RecordKeyBatch:
    """Batch-size mutation that leaves a trace of its key in the lineage through the batch size."""

    target: ClassVar[str] = "batch_size"

    def __call__(self, key, batch_size):
        return batch_size + 1 + int(jax.random.key_data(key)[-1] % 7)


@dataclasses.dataclass(frozen=True)
class SwapBatch:
    target: ClassVar[str] = "batch_size"
    is_crossover: ClassVar[bool] = True

    def __call__(self, key, pair):
        return pair[1], pair[0]


@dataclasses.dataclass(frozen=True)
class SwapGraph:
    target: ClassVar[str] = "graph"
    is_crossover: ClassVar[bool] = True

    def __call__(self, key, pair):
        return pair[1], pair[0]


@dataclasses.dataclass(frozen=True)
class Record:
    """Records the key each mutation received, in the returned value (for an 'optimiser' held as a dict)."""

    target: ClassVar[str] = "optimiser"

    def __call__(self, key, opt):
        return {**opt, "key": key_bits(key)}


def test_each_mutation_changes_its_field_only(key):
    parent = ng.Candidate(mlp(), optimiser={"lr": 0.1}, batch_size=16, fitness=0.7, generation=3)
    child = ng.MapCandidate(Widen(2), ScaleLr(0.5))(key, parent)
    assert child.graph.nout("d1") == 6 and child.optimiser == {"lr": 0.05} and child.batch_size == 16
    assert child.fitness is None and child.info == {"parent_fitness": 0.7} and child.generation == 3
    assert parent.graph.nout("d1") == 4 and parent.optimiser == {"lr": 0.1} and parent.fitness == 0.7
    only_opt = ng.MapCandidate(ScaleLr(2.0))(key, parent)
    assert only_opt.graph is parent.graph and only_opt.optimiser == {"lr": 0.2}


def test_each_mutation_gets_the_key_folded_with_its_position(key):
    parent = ng.Candidate(mlp(), optimiser={}, batch_size=16)
    child = ng.MapCandidate(Widen(), Record())(key, parent)
    assert child.optimiser["key"] == key_bits(jax.random.fold_in(key, 1))
    child0 = ng.MapCandidate(Record())(key, parent)
    assert child0.optimiser["key"] == key_bits(jax.random.fold_in(key, 0))


def test_lineage_records_what_ran_and_the_spec_diff(key):
    parent = ng.Candidate(mlp(), optimiser={"lr": 0.1}, batch_size=16, fitness=0.5, generation=2)
    child = ng.MapCandidate(Widen(2), ScaleLr(0.5))(key, parent)
    event = child.lineage[-1]
    assert event["event"] == "mutation" and event["generation"] == 2
    assert event["what"] == [repr(Widen(2)), repr(ScaleLr(0.5))]
    assert event["changes"]["graph"] == {"resized": {"d1": [4, 6]}}
    assert event["changes"]["optimiser"] == [repr({"lr": 0.1}), repr({"lr": 0.05})]
    grandchild = ng.MapCandidate(InsertAfterD1())(key, child)
    assert len(grandchild.lineage) == 2
    assert grandchild.lineage[-1]["changes"]["graph"] == {"added": ["d1b"], "rewired": ["d2"]}
    json.dumps(grandchild.lineage)  # JSON-friendly
    # the grandparent's fitness is carried through an unscored parent
    assert grandchild.info["parent_fitness"] == 0.5


def test_graph_diff_reports_removed_and_changed_vertices(key):
    g = mlp()
    spec = g.spec.replace_entries({"d1": (ng.Dense(4, "tanh"), ["in"])})
    assert ng.evolution.graph_diff(g.spec, spec) == {"changed": ["d1"]}
    removed = g.spec.replace_entries({"d1": None, "d2": (ng.Dense(2), ["in"])})
    assert ng.evolution.graph_diff(g.spec, removed) == {"removed": ["d1"], "rewired": ["d2"]}
    assert ng.evolution.graph_diff(g.spec, g.spec) == {}


def test_mutation_is_deterministic(key):
    parent = ng.Candidate(mlp(), batch_size=16)
    a = ng.MapCandidate(RecordKeyBatch())(key, parent)
    b = ng.MapCandidate(RecordKeyBatch())(key, parent)
    assert a.batch_size == b.batch_size and a.lineage == b.lineage


def test_crossover_of_a_pair_returns_two_candidates(key):
    a = ng.Candidate(mlp(0), batch_size=8, fitness=0.1)
    b = ng.Candidate(mlp(1, hidden=6), batch_size=32, fitness=0.9)
    a2, b2 = ng.MapCandidate(SwapBatch(), SwapGraph())(key, (a, b))
    assert (a2.batch_size, b2.batch_size) == (32, 8)
    assert a2.graph is b.graph and b2.graph is a.graph
    assert a2.info["parent_fitness"] == 0.1 and b2.info["parent_fitness"] == 0.9
    assert a2.fitness is None and b2.fitness is None
    assert a2.lineage[-1]["event"] == "crossover"
    assert a2.lineage[-1]["changes"]["batch_size"] == [8, 32]
    assert a2.lineage[-1]["changes"]["graph"] == {"resized": {"d1": [4, 6]}}
    assert (a.batch_size, b.batch_size) == (8, 32)


def test_crossover_inside_pair_candidates(key):
    cands = [ng.Candidate(mlp(), batch_size=bs, fitness=1.0) for bs in (1, 2, 3)]
    out = ng.PairCandidates(ng.EvolveCandidates(ng.MapCandidate(SwapBatch())))(key, cands)
    assert [c.batch_size for c in out] == [2, 1, 1]


def test_rules_one_per_target_no_mixing_and_the_right_call(key):
    with pytest.raises(ValueError, match="both target 'graph'"):
        ng.MapCandidate(Widen(), InsertAfterD1())
    with pytest.raises(ValueError, match="cannot mix"):
        ng.MapCandidate(Widen(), SwapBatch())
    with pytest.raises(TypeError, match="target"):
        ng.MapCandidate(lambda k, g: g)
    with pytest.raises(ValueError, match="at least one"):
        ng.MapCandidate()
    c = ng.Candidate(mlp())
    with pytest.raises(TypeError, match="pair"):
        ng.MapCandidate(SwapBatch())(key, c)
    with pytest.raises(TypeError, match="one candidate"):
        ng.MapCandidate(Widen())(key, (c, c))


def test_a_graph_mutation_must_return_a_graph(key):
    @dataclasses.dataclass(frozen=True)
    class Broken:
        target: ClassVar[str] = "graph"

        def __call__(self, key, graph):
            return graph.spec

    with pytest.raises(TypeError, match=r"expected an ng\.Graph"):
        ng.MapCandidate(Broken())(key, ng.Candidate(mlp()))


def test_map_candidate_is_frozen_and_comparable():
    assert ng.MapCandidate(Widen(1), ScaleLr(0.5)) == ng.MapCandidate(Widen(1), ScaleLr(0.5))
    assert hash(ng.MapCandidate(Widen(1))) == hash(ng.MapCandidate(Widen(1)))
    assert ng.MapCandidate(SwapBatch()).is_crossover and not ng.MapCandidate(Widen()).is_crossover


def test_with_the_library_mutations_and_crossovers(key):
    parent = ng.Candidate(mlp(), optimiser=ng.Adam(1e-3), batch_size=32, fitness=0.4)
    mutate = ng.MapCandidate(
        ng.LearningRateMutation(),
        ng.TrainBatchSizeMutation(0.5, 0.5),
        ng.VertexMutation(ng.ActivationFunctionMutation("elu")),
    )
    child = mutate(key, parent)
    assert child.batch_size == 48 and child.optimiser.learning_rate != 1e-3
    assert child.graph.op("d1").activation == "elu"
    event = child.lineage[-1]
    assert event["changes"]["batch_size"] == [32, 48] and event["changes"]["graph"] == {"changed": ["d1", "d2"]}
    assert {"mutation": "TrainBatchSizeMutation", "old": 32, "new": 48} in event["events"]
    json.dumps(child.lineage)
    assert mutate(key, parent).lineage == child.lineage  # deterministic

    other = parent.replace(optimiser=ng.SGD(0.5), batch_size=8)
    a, b = ng.MapCandidate(ng.mutation.BatchSizeCrossover(), ng.LearningRateCrossover())(key, (parent, other))
    assert (a.batch_size, b.batch_size) == (8, 32)
    assert (a.optimiser, b.optimiser) == (ng.Adam(0.5), ng.SGD(1e-3))
    assert a.lineage[-1]["event"] == b.lineage[-1]["event"] == "crossover"
