import pickle

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import naivega_jax as ng


def _read(logdir):
    return EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0}).Reload()


def _scalars(events, tag):
    return [(e.step, pytest.approx(e.value)) for e in events.Scalars(tag)]


def _text(events, tag, step):
    (event,) = [e for e in events.Tensors(tag) if e.step == step]
    return event.tensor_proto.string_val[0].decode()


def test_writes_fitness_params_and_the_best_architecture_per_generation(tmp_path, graphs):
    g18, g39, g147 = graphs
    cb = ng.TensorBoard(tmp_path / "tb")
    pop = ng.Population([ng.Candidate(g18, fitness=0.5), ng.Candidate(g39, fitness=0.75), ng.Candidate(g147)])
    cb(pop)
    pop2 = ng.Population(
        [ng.Candidate(g147, fitness=0.9), ng.Candidate(g18, fitness=float("nan")), ng.Candidate(g39, fitness=0.6)],
        generation=2,
    )
    cb(pop2)
    # flushed after every generation: readable while the run goes on, before close
    events = _read(tmp_path / "tb")
    assert _scalars(events, "fitness/best") == [(1, 0.75), (2, 0.9)]
    assert _scalars(events, "fitness/mean") == [(1, 0.625), (2, 0.75)]
    assert _scalars(events, "params/best") == [(1, 39.0), (2, 147.0)]
    assert _scalars(events, "population/size") == [(1, 3.0), (2, 3.0)]
    first, second = _text(events, "architecture/best", 1), _text(events, "architecture/best", 2)
    assert first.startswith("fitness 0.75, 39 parameters")
    assert first.endswith("3 vertices, 39 parameters") and "    d0 " in first and "    d1 " not in first
    assert second.startswith("fitness 0.9, 147 parameters") and second.endswith("4 vertices, 147 parameters")
    assert events.summary_metadata["architecture/best"].plugin_data.plugin_name == "text"
    cb.close()


def test_a_generation_without_valid_fitness_writes_no_fitness_and_says_so(tmp_path, graphs):
    cb = ng.TensorBoard(tmp_path)
    cb([ng.Candidate(graphs[0]), ng.Candidate(graphs[1], fitness=float("inf"))])
    cb.close()
    events = _read(tmp_path)
    assert "fitness/best" not in events.Tags()["scalars"]
    assert _scalars(events, "population/size") == [(1, 2.0)]
    assert _text(events, "architecture/best", 1) == "no valid fitness in this generation"


def test_a_copy_and_a_resumed_callback_write_new_event_files_in_the_same_logdir(tmp_path, graphs):
    cb = ng.TensorBoard(tmp_path)
    cb(ng.Population([ng.Candidate(graphs[0], fitness=0.1)]))
    copy = pickle.loads(pickle.dumps(cb))
    copy(ng.Population([ng.Candidate(graphs[1], fitness=0.2)], generation=2))
    cb.close()
    copy.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    assert _scalars(_read(tmp_path), "fitness/best") == [(1, 0.1), (2, 0.2)]


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(TypeError, match="logdir must be a path"):
        ng.TensorBoard(3)
    with pytest.raises(ValueError, match="population is empty"):
        ng.TensorBoard(tmp_path)([])
