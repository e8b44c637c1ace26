import json

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.io._checkpoint import LATEST


def _graph(key, width=4):
    inp = ng.input_vertex("in", shape=(6, 2))
    c = ng.vertex("c", ng.Conv(width, 3, activation="relu"), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), c)
    p = ng.vertex("p", ng.GlobalPool("mean"), bn)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(3), p))


def _population(generation=1):
    keys = jax.random.split(jax.random.key(1), 3)
    g0, g1, g2 = _graph(keys[0]), _graph(keys[1]), _graph(keys[2], width=5)
    # train-mode batch-norm statistics so that state differs from its init
    _, g0 = ng.apply(g0, np.ones((2, 6, 2), np.float32) * 3, train=True)
    cands = [
        ng.Candidate(g0, optimiser=ng.Adam(1e-3), batch_size=16, fitness=0.25).with_event("created", how="sampled"),
        ng.Candidate(g1, optimiser=ng.OptimiserChain(ng.WeightDecay(1e-4), ng.ShieldedOpt(ng.SGD(0.1))), fitness=None),
        ng.Candidate(g2, batch_size=64, fitness=0.75, info={"train_s": np.float32(1.5), "bad": float("nan")}),
    ]
    return ng.Population(cands, generation=generation)


def _assert_same_population(a, b):
    assert a.generation == b.generation and len(a) == len(b)
    for x, y in zip(a, b):
        assert x.graph.spec == y.graph.spec
        assert x.optimiser == y.optimiser and x.batch_size == y.batch_size
        assert x.fitness == y.fitness and x.generation == y.generation
        assert list(x.lineage) == list(y.lineage)
        for leaf_x, leaf_y in zip(jax.tree_util.tree_leaves(x.graph), jax.tree_util.tree_leaves(y.graph), strict=True):
            np.testing.assert_array_equal(np.asarray(leaf_x), np.asarray(leaf_y))


def test_round_trip_is_exact(tmp_path):
    pop = _population(generation=4)
    path = ng.save_population(tmp_path / "ck", pop, key=jax.random.key(42), extra={"iterator": {"position": 7}})
    loaded, key, extra = ng.io.load_checkpoint(path)
    _assert_same_population(pop, loaded)
    assert np.array_equal(jax.random.key_data(key), jax.random.key_data(jax.random.key(42)))
    assert extra == {"iterator": {"position": 7}}
    assert loaded[2].info == {"train_s": 1.5, "bad": "nan"}
    # equal specs are stored once
    doc = json.loads((path / "population.json").read_text())
    assert len(doc["specs"]) == 2 and [m["spec"] for m in doc["candidates"]] == [0, 0, 1]
    # the loaded graphs compute what the saved ones computed
    x = np.random.default_rng(0).normal(size=(3, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(pop[0].graph(x)), np.asarray(loaded[0].graph(x)))


def test_saving_never_modifies_the_population(tmp_path):
    pop = _population()
    before = [np.asarray(leaf).copy() for leaf in jax.tree_util.tree_leaves([c.graph for c in pop])]
    ng.save_population(tmp_path / "ck", pop)
    after = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves([c.graph for c in pop])]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_damaged_arrays_are_detected(tmp_path):
    path = ng.save_population(tmp_path / "ck", _population())
    doc = json.loads((path / "population.json").read_text())
    doc["arrays_sha256"] = "0" * 64
    (path / "population.json").write_text(json.dumps(doc))
    with pytest.raises(ng.CheckpointError, match="checksum"):
        ng.io.load_checkpoint(path)


def test_half_written_checkpoint_is_detected(tmp_path):
    path = ng.save_population(tmp_path / "ck", _population())
    (path / "population.json").write_text('{"format": "naivega_jax.popul')
    with pytest.raises(ng.CheckpointError, match="damaged"):
        ng.io.load_checkpoint(path)
    with pytest.raises(ng.CheckpointError, match=r"no population\.json"):
        ng.io.load_checkpoint(tmp_path / "nothing")


def test_run_checkpoints_keep_the_newest_and_fall_back_past_damage(tmp_path, caplog):
    run = tmp_path / "run"
    for gen in (1, 2, 3):
        ng.io.write_run_checkpoint(run, _population(generation=gen), key=jax.random.key(gen), keep=2)
    assert [p.name for p in ng.io.run_checkpoints(run)] == ["gen_000003", "gen_000002"]
    assert (run / "checkpoints" / LATEST).read_text() == "gen_000003"
    assert ng.load_population(run).generation == 3
    # damage the newest: the previous one is used, with a warning
    (run / "checkpoints" / "gen_000003" / "population.json").write_text("{")
    with caplog.at_level("WARNING", logger="naivega_jax"):
        pop, key, _, path = ng.io.load_run_checkpoint(run)
    assert pop.generation == 2 and path.name == "gen_000002"
    assert np.array_equal(jax.random.key_data(key), jax.random.key_data(jax.random.key(2)))
    assert "skipping damaged checkpoint" in caplog.text


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = ng.save_population(tmp_path / "ck", _population(generation=1))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("naivega_jax.io._checkpoint.save_arrays", boom)
    with pytest.raises(OSError, match="disk full"):
        ng.save_population(path, _population(generation=2))
    assert ng.load_population(path).generation == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_no_usable_checkpoint_names_the_directory(tmp_path):
    with pytest.raises(ng.CheckpointError, match="no usable checkpoint"):
        ng.io.load_run_checkpoint(tmp_path)


def test_persist_and_lineage(tmp_path):
    pop = _population(generation=2)
    ng.Persist(tmp_path)(pop)
    _assert_same_population(pop, ng.load_population(tmp_path))
    path = ng.io.save_lineage(tmp_path / "best" / "lineage.json", pop[0])
    doc = json.loads(path.read_text())
    assert doc["fitness"] == 0.25 and doc["batch_size"] == 16
    assert doc["lineage"] == [{"generation": 1, "event": "created", "how": "sampled"}]
    assert doc["optimiser"]["type"] == "Adam" and doc["nparams"] == ng.nparams(pop[0].graph)
    assert ng.graph.from_json(doc["spec"]) == pop[0].graph.spec
