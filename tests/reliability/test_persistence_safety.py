"""Saving never replaces what it did not write; loading never accepts a checkpoint or graph that was changed."""

from __future__ import annotations

import json
import os
import time
import tracemalloc

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.io import _checkpoint


def _graph(key, width=4):
    inp = ng.input_vertex("in", shape=(6, 2))
    c = ng.vertex("c", ng.Conv(width, 3, activation="relu"), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), c)
    p = ng.vertex("p", ng.GlobalPool("mean"), bn)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(3), p))


def _population(generation):
    keys = jax.random.split(jax.random.key(generation), 2)
    cands = [
        ng.Candidate(_graph(keys[0]), optimiser=ng.Adam(1e-3), batch_size=16, fitness=0.25),
        ng.Candidate(_graph(keys[1], width=5), batch_size=64, fitness=0.75),
    ]
    return ng.Population(cands, generation=generation)


def _listing(path):
    return sorted(os.listdir(path))


# ---------------------------------------------------------------- never replace what we did not write


def _refused(save, path, *expected):
    with pytest.raises(ng.OverwriteError) as info:
        save(path)
    message = str(info.value)
    assert isinstance(info.value, FileExistsError) and isinstance(info.value, ng.NaiveGAError)
    assert str(path) in message
    for text in expected:
        assert text in message, (text, message)
    return message


def test_save_graph_refuses_a_plain_file_and_leaves_it_alone(key, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    _refused(lambda p: ng.save_graph(p, _graph(key)), notes, "a file of 8 bytes", "expected a saved graph")
    assert notes.read_text() == "my notes" and _listing(tmp_path) == ["notes.txt"]


def test_export_onto_a_run_directory_refuses_and_the_run_still_loads(key, tmp_path, monkeypatch):
    run = tmp_path / "run"
    ng.io.write_run_checkpoint(run, _population(1), key=jax.random.key(3))
    (run / "history.jsonl").write_text("{}\n")
    before = _listing(run)
    writes = []
    monkeypatch.setattr("naivega_jax.graph._io.save_arrays", lambda *args: writes.append(args))
    message = _refused(lambda p: ng.save_graph(p, _graph(key)), run, "checkpoints/", "history.jsonl")
    assert writes == []  # refused before any work
    assert "a directory holding" in message
    assert _listing(run) == before and _listing(tmp_path) == ["run"]
    monkeypatch.undo()
    assert ng.load_population(run).generation == 1


def test_save_graph_refuses_other_directories_and_symlinks(key, tmp_path):
    g = _graph(key)
    save = lambda p: ng.save_graph(p, g)
    # our layout plus one more file
    extra = ng.save_graph(tmp_path / "extra", g)
    (extra / "README").write_text("mine")
    _refused(save, extra, "README")
    assert (extra / "README").read_text() == "mine"
    # spec.json + arrays/ whose spec.json is not our graph format
    foreign = tmp_path / "foreign"
    (foreign / "arrays").mkdir(parents=True)
    (foreign / "spec.json").write_text(json.dumps({"format": "someone.else/3"}))
    _refused(save, foreign, "spec.json")
    assert json.loads((foreign / "spec.json").read_text()) == {"format": "someone.else/3"}
    # a population checkpoint is not a saved graph
    ck = ng.save_population(tmp_path / "ck", _population(1))
    _refused(save, ck, "population.json")
    assert ng.load_population(ck).generation == 1
    # a symbolic link, even to a saved graph, is never replaced (nor is what it points to)
    target = ng.save_graph(tmp_path / "target", g)
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    _refused(save, link, "symbolic link")
    assert link.is_symlink() and ng.load_graph(target).spec == g.spec
    assert _listing(tmp_path) == ["ck", "extra", "foreign", "link", "target"]


def test_save_graph_uses_empty_directories_and_replaces_only_saved_graphs(key, tmp_path):
    g1, g2 = _graph(key), _graph(jax.random.key(9), width=6)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ng.load_graph(ng.save_graph(empty, g1, overwrite=False)).spec == g1.spec
    path = ng.save_graph(tmp_path / "g", g1)
    message = _refused(lambda p: ng.save_graph(p, g2, overwrite=False), path, "already a saved graph")
    assert "overwrite=True" in message and "--force" in message
    assert ng.load_graph(path).spec == g1.spec
    assert ng.load_graph(ng.save_graph(path, g2)).spec == g2.spec  # overwrite=True (the default) replaces it
    assert _listing(tmp_path) == ["empty", "g"]


def test_save_population_refuses_what_is_not_a_checkpoint(key, tmp_path):
    pop = _population(1)
    save = lambda p: ng.save_population(p, pop)
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    _refused(save, notes, "a file", "expected a population checkpoint")
    graph = ng.save_graph(tmp_path / "graph", _graph(key))
    _refused(save, graph, "spec.json")
    run = tmp_path / "run"
    ng.io.write_run_checkpoint(run, pop)
    _refused(save, run, "checkpoints/")
    assert notes.read_text() == "x" and ng.load_graph(graph).spec == _graph(key).spec
    assert ng.load_population(run).generation == 1
    # its own earlier output is replaced
    ck = ng.save_population(tmp_path / "ck", pop)
    ng.save_population(ck, _population(2))
    assert ng.load_population(ck).generation == 2
    assert _listing(tmp_path) == ["ck", "graph", "notes.txt", "run"]


def test_a_run_rewrites_its_own_damaged_checkpoint(tmp_path, caplog):
    # resume falls back past a damaged newest checkpoint; writing that generation again must not be refused
    ng.io.write_run_checkpoint(tmp_path, _population(1))
    ng.io.write_run_checkpoint(tmp_path, _population(2))
    newest = tmp_path / "checkpoints" / "gen_000002" / "population.json"
    newest.write_text('{"format": "naivega_jax.popul')
    with caplog.at_level("WARNING", logger="naivega_jax"):
        assert ng.io.load_run_checkpoint(tmp_path)[0].generation == 1
    ng.io.write_run_checkpoint(tmp_path, _population(2))
    assert ng.io.load_run_checkpoint(tmp_path)[3].name == "gen_000002"


def test_save_lineage_refuses_a_directory(tmp_path):
    cand = _population(1)[0]
    target = tmp_path / "lineage.json"
    target.mkdir()
    (target / "keep").write_text("mine")
    _refused(lambda p: ng.io.save_lineage(p, cand), target, "a directory holding keep")
    assert (target / "keep").read_text() == "mine" and _listing(tmp_path) == ["lineage.json"]
    # its own file is replaced
    path = ng.io.save_lineage(tmp_path / "best.json", cand)
    ng.io.save_lineage(path, cand.replace(fitness=0.5))
    assert json.loads(path.read_text())["fitness"] == 0.5
    assert _listing(tmp_path) == ["best.json", "lineage.json"]


# ---------------------------------------------------------------- checkpoint metadata is verified


def _edit_key(doc):
    doc["key"][0] ^= 1


def _edit_fitness(doc):
    doc["candidates"][0]["fitness"] = 0.99


def _edit_batch_size(doc):
    doc["candidates"][1]["batch_size"] = 32


def _edit_spec_width(doc):
    conv = next(v for v in doc["specs"][0]["vertices"] if v["name"] == "c")
    conv["op"]["nout"] = 7


def _edit_generation(doc):
    doc["candidates"][0]["generation"] = 5


EDITS = {"key": _edit_key, "fitness": _edit_fitness, "batch_size": _edit_batch_size}
EDITS |= {"spec_width": _edit_spec_width, "generation": _edit_generation}

MALFORMED = {
    "candidates_not_a_list": lambda doc: doc.update(candidates=5),
    "missing_batch_size": lambda doc: doc["candidates"][0].pop("batch_size"),
    "missing_specs": lambda doc: doc.pop("specs"),
    "spec_index_out_of_range": lambda doc: doc["candidates"][0].update(spec=7),
    "negative_spec_index": lambda doc: doc["candidates"][0].update(spec=-1),
    "arrays_not_a_layout": lambda doc: doc["candidates"][0].update(arrays="x"),
    "array_past_the_end": lambda doc: doc["candidates"][0]["arrays"][0].__setitem__(4, 10**6),
    "key_of_wrong_length": lambda doc: doc.update(key=[1, 2, 3]),
    "optimiser_garbage": lambda doc: doc["candidates"][0].update(optimiser={"type": 3}),
    "spec_vertices_garbage": lambda doc: doc["specs"][0].update(vertices=[1, 2]),
    "batch_size_a_string": lambda doc: doc["candidates"][0].update(batch_size="16"),
    "arrays_size_missing": lambda doc: doc.pop("arrays_size"),
}


def _two_generation_run(run):
    ng.io.write_run_checkpoint(run, _population(1), key=jax.random.key(1))
    ng.io.write_run_checkpoint(run, _population(2), key=jax.random.key(2))
    newest = run / "checkpoints" / "gen_000002"
    return newest, json.loads((newest / "population.json").read_text())


def _expect_fallback(run, newest, caplog):
    caplog.clear()
    with caplog.at_level("WARNING", logger="naivega_jax"):
        pop, key, _, path = ng.io.load_run_checkpoint(run)
    assert pop.generation == 1 and path.name == "gen_000001"
    assert np.array_equal(jax.random.key_data(key), jax.random.key_data(jax.random.key(1)))
    assert "skipping damaged checkpoint" in caplog.text and "gen_000002" in caplog.text
    with pytest.raises(ng.CheckpointError, match=r"gen_000002.*damaged") as info:
        ng.io.load_checkpoint(newest)
    assert info.value.__cause__ is None and "\n" not in str(info.value)


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_field_is_detected_and_the_previous_checkpoint_used(tmp_path, caplog, edit):
    newest, doc = _two_generation_run(tmp_path)
    EDITS[edit](doc)
    (newest / "population.json").write_text(json.dumps(doc, indent=1))
    _expect_fallback(tmp_path, newest, caplog)
    with pytest.raises(ng.CheckpointError, match="checksum"):
        ng.io.load_checkpoint(newest)


def _as_arrays_hash_format(doc, path):
    """The document as the previous format wrote it: its SHA-256 over the packed arrays only."""
    import hashlib

    packed = np.asarray(_checkpoint.load_arrays(path / "arrays")["packed"], np.float32)
    doc = {k: v for k, v in doc.items() if k != "sha256"}
    return {**doc, "format": "naivega_jax.population/1", "arrays_sha256": hashlib.sha256(packed.tobytes()).hexdigest()}


def _rehash(doc, path):
    """A document with a valid checksum over its new content: as a writer with a bug would leave it."""
    doc.pop("sha256", None)
    packed = np.asarray(_checkpoint.load_arrays(path / "arrays")["packed"])
    return {**doc, "sha256": _checkpoint._digest(doc, packed)}


@pytest.mark.parametrize("edit", sorted(MALFORMED))
@pytest.mark.parametrize("hashed", ["whole_document", "arrays_only"])
def test_malformed_documents_raise_checkpoint_error_and_fall_back(tmp_path, caplog, edit, hashed):
    # the checksum matches (a writer with a bug, or the previous format whose hash covered the arrays only): the
    # document must still decode to a usable population or be reported as damaged
    newest, doc = _two_generation_run(tmp_path)
    if hashed == "arrays_only":
        doc = _as_arrays_hash_format(doc, newest)
        MALFORMED[edit](doc)
    else:
        MALFORMED[edit](doc)
        doc = _rehash(doc, newest)
    (newest / "population.json").write_text(json.dumps(doc))
    _expect_fallback(tmp_path, newest, caplog)


def test_a_spec_that_no_longer_fits_its_arrays_is_refused_even_with_a_valid_checksum(tmp_path, caplog):
    newest, doc = _two_generation_run(tmp_path)
    _edit_spec_width(doc)
    (newest / "population.json").write_text(json.dumps(_rehash(doc, newest)))
    _expect_fallback(tmp_path, newest, caplog)
    with pytest.raises(ng.CheckpointError, match=r"vertex 'c'.*\(3, 2, 7\).*\(3, 2, 4\)"):
        ng.io.load_checkpoint(newest)


def test_previous_format_still_loads_and_is_validated(tmp_path, caplog):
    newest, doc = _two_generation_run(tmp_path)
    (newest / "population.json").write_text(json.dumps(_as_arrays_hash_format(doc, newest)))
    pop, key, _ = ng.io.load_checkpoint(newest)
    assert pop.generation == 2 and [c.batch_size for c in pop] == [16, 64] and pop[0].fitness == 0.25
    assert np.array_equal(jax.random.key_data(key), jax.random.key_data(jax.random.key(2)))
    # its metadata is not hashed, but graphs are still checked against their arrays, and bad fields still fall back
    for edit in (_edit_spec_width, MALFORMED["candidates_not_a_list"], MALFORMED["negative_spec_index"]):
        _, doc = _two_generation_run(tmp_path)
        edited = _as_arrays_hash_format(doc, newest)
        edit(edited)
        (newest / "population.json").write_text(json.dumps(edited))
        _expect_fallback(tmp_path, newest, caplog)


def test_new_checkpoints_hash_the_whole_document(tmp_path):
    path = ng.save_population(tmp_path / "ck", _population(3), key=jax.random.key(4))
    doc = json.loads((path / "population.json").read_text())
    assert doc["format"] == "naivega_jax.population/2" and len(doc["sha256"]) == 64
    assert ng.io.load_checkpoint(path)[0].generation == 3
    doc["extra"] = {"note": "changed"}
    (path / "population.json").write_text(json.dumps(doc))
    with pytest.raises(ng.CheckpointError, match="checksum"):
        ng.io.load_checkpoint(path)


# ---------------------------------------------------------------- load_graph of a changed spec


def _saved_dense_graph(key, tmp_path):
    inp = ng.input_vertex("in", shape=(5,))
    d = ng.vertex("d", ng.Dense(3), inp)
    bn = ng.vertex("bn", ng.BatchNorm(), d)
    g = ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(2), bn))
    return ng.save_graph(tmp_path / "g", g)


def _set_width(path, vertex, width):
    spec = json.loads((path / "spec.json").read_text())
    next(v for v in spec["vertices"] if v["name"] == vertex)["op"]["nout"] = width
    (path / "spec.json").write_text(json.dumps(spec))


@pytest.mark.parametrize("width", [10**12, 5 * 10**7])
def test_an_absurd_width_fails_fast_without_allocating(key, tmp_path, width):
    path = _saved_dense_graph(key, tmp_path)
    _set_width(path, "d", width)
    ng.load_graph(_saved_dense_graph(key, tmp_path / "warm"))  # orbax imported and warm
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ng.GraphError, match=rf"vertex 'd': params should have shapes .*\(5, {width}\)") as info:
            ng.load_graph(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0 and peak < 20 * 2**20, (elapsed, peak)
    assert info.value.__cause__ is None and "\n" not in str(info.value)


def test_load_graph_checks_the_format_of_spec_json(key, tmp_path):
    path = _saved_dense_graph(key, tmp_path)
    spec = json.loads((path / "spec.json").read_text())
    assert spec["format"] == "naivega_jax.graph/1"
    (path / "spec.json").write_text(json.dumps({**spec, "format": "naivega_jax.graph/99"}))
    with pytest.raises(ng.GraphError, match=r"format 'naivega_jax.graph/99', expected 'naivega_jax.graph/1'"):
        ng.load_graph(path)
    (path / "spec.json").write_text(json.dumps({k: v for k, v in spec.items() if k != "format"}))
    with pytest.raises(ng.GraphError, match="format None"):
        ng.load_graph(path)
    (path / "spec.json").write_text("[1, 2]")
    with pytest.raises(ng.GraphError, match="holds a list"):
        ng.load_graph(path)
    (path / "spec.json").write_text('{"format": ')
    with pytest.raises(ng.GraphError, match="not readable JSON"):
        ng.load_graph(path)


def test_load_graph_errors_are_one_line(key, tmp_path):
    path = _saved_dense_graph(key, tmp_path)
    # arrays missing or damaged: one GraphError line naming the path, no chained orbax traceback
    for damage in ("remove", "garbage"):
        import shutil

        shutil.rmtree(path / "arrays")
        if damage == "garbage":
            (path / "arrays").mkdir()
            (path / "arrays" / "junk").write_text("x")
        with pytest.raises(ng.GraphError, match=r"arrays of .* are unreadable") as info:
            ng.load_graph(path)
        assert info.value.__cause__ is None and info.value.__suppress_context__ and "\n" not in str(info.value)
        path = _saved_dense_graph(key, tmp_path / damage)
    # a vertex whose arrays are missing names the arrays its op declares
    with pytest.raises(ng.GraphError, match=r"vertex 'd': params should have arrays \['bias', 'kernel'\], has \[\]"):
        ng.validate_graph(ng.Graph(ng.load_graph(path).spec, {}, {}))
