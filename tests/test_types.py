"""The package type-checks, and the fixes the type checker found behave as their annotations say."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.graph._remap import take

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_passes_on_the_package():
    # the configuration ([tool.mypy] in pyproject.toml) is read from the repository root; ~15 s without a cache
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "naivega_jax"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


CONFORMING = """
import numpy as np

import naivega_jax as ng
from naivega_jax.evolution import Callback, Evolution, Executor, Fitness, PrecompilingFitness
from naivega_jax.mutation import Crossover, FieldMutation, GraphLevelMutation, VertexLevelMutation
from naivega_jax.search import ArchSpaceLike

data = (np.zeros((4, 2)), np.zeros(4, int))
fitness: Fitness = ng.evolution.AccuracyFitness(data)
precompiling: PrecompilingFitness = ng.evolution.TrainThenFitness(train_data=data, fitness=fitness)
evolution: Evolution = ng.evolution.EliteSelection(2)
executor: Executor = ng.distributed.LocalExecutor()
callback: Callback = ng.plot.CbAll()
graph_level: GraphLevelMutation = ng.mutation.VertexMutation(ng.mutation.NoutMutation(-0.1, 0.1))
vertex_level: VertexLevelMutation = ng.mutation.NoutMutation(-0.1, 0.1)
field: FieldMutation[ng.train.Optimiser] = ng.mutation.LearningRateMutation()
crossover: Crossover[int] = ng.mutation.BatchSizeCrossover()
space: ArchSpaceLike = ng.search.VertexSpace(ng.search.DenseSpace(3, "relu"))
"""

MISMATCHED = """
import naivega_jax as ng
from naivega_jax.mutation import GraphLevelMutation, VertexLevelMutation

vertex_level: VertexLevelMutation = ng.mutation.VertexMutation(ng.mutation.NoutMutation(-0.1, 0.1))
graph_level: GraphLevelMutation = ng.mutation.NoutMutation(-0.1, 0.1)
"""


def _mypy_errors(tmp_path, source):
    file = tmp_path / "snippet.py"
    file.write_text(source)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", str(file)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    return [line for line in result.stdout.splitlines() if line.startswith(str(file)) and ": error:" in line]


def test_the_library_objects_satisfy_the_protocols(tmp_path):
    assert _mypy_errors(tmp_path, CONFORMING) == []


def test_the_protocols_tell_the_mutation_kinds_apart(tmp_path):
    errors = _mypy_errors(tmp_path, MISMATCHED)
    assert len(errors) == 2
    assert ":5: error: Incompatible types in assignment" in errors[0] and '"VertexLevelMutation"' in errors[0]
    assert ":6: error: Incompatible types in assignment" in errors[1] and '"GraphLevelMutation"' in errors[1]


def _spec():
    return ng.GraphSpec.create(
        [("in", ng.graph.Input((5,)), ()), ("d", ng.Dense(3), ("in",)), ("e", ng.Dense(2), ("d",))], ["in"], ["e"]
    )


def test_replace_entries_ignores_a_removal_of_a_vertex_it_does_not_have():
    # a None change for an unknown name used to be unpacked as (op, inputs): TypeError
    spec = _spec().replace_entries({"ghost": None})
    assert spec.names == ("in", "d", "e")
    assert spec.nin("e") == (3,)


def test_replace_entries_removes_and_adds():
    spec = _spec().replace_entries({"d": None, "f": (ng.Dense(4), ("in",)), "e": (ng.Dense(2), ("f",))})
    assert spec.names == ("in", "f", "e")
    assert spec.nin("e") == (4,)


@pytest.mark.parametrize("fill", ["fanin", "block"])
def test_take_with_a_random_fill_needs_a_generator(fill):
    # used to fail with AttributeError: 'NoneType' object has no attribute 'standard_normal'
    with pytest.raises(ValueError, match="rng must be a numpy Generator"):
        take(np.ones((2, 3)), np.array([0, -1, 2, -1]), 1, fill, None)


def test_take_with_a_constant_fill_needs_no_generator():
    out = take(np.ones((2, 3)), np.array([0, -1, 2]), 1, 0.5, None)
    assert out.tolist() == [[1.0, 0.5, 1.0], [1.0, 0.5, 1.0]]


def _candidate(fitness):
    import jax

    inp = ng.input_vertex("in", shape=(2,))
    g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
    return ng.Candidate(g, fitness=fitness)


def test_population_best_is_the_first_of_the_highest():
    pop = ng.evolution.Population((_candidate(None), _candidate(2.0), _candidate(5.0), _candidate(5.0)))
    assert pop.best() is pop.candidates[2]
