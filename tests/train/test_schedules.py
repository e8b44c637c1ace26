"""Optax schedules as the learning rate of optimiser specs; ``ScaledSchedule`` and learning-rate mutation."""

import json

import jax
import numpy as np
import optax
import pytest
from train_helpers import blobs, leaves, mlp

import naivega_jax as ng
from naivega_jax.train import ScaledSchedule

FEATURES = 14


@pytest.fixture(scope="module")
def data():
    return blobs(96, FEATURES)


def test_adam_with_a_cosine_schedule_trains(data):
    x, y = data
    schedule = optax.cosine_decay_schedule(1e-2, 1000)
    spec = ng.Adam(schedule)
    assert spec.learning_rate == ScaledSchedule(schedule, 1.0) and spec.learning_rate(0) == pytest.approx(1e-2)
    kw = dict(batch_size=16, epochs=6, compile_tier="full")
    r = ng.train_graph(jax.random.key(1), mlp(8, FEATURES), x, y, optimiser=spec, **kw)
    means = r.losses.reshape(6, -1).mean(axis=1)
    assert means[-1] < 0.6 * means[0], means
    plain = ng.train_graph(jax.random.key(1), mlp(8, FEATURES), x, y, optimiser=optax.adam(schedule), **kw)
    # the spec's flat moments and optax's tree round differently: Adam amplifies that in its smallest steps
    np.testing.assert_allclose(leaves(r.graph), leaves(plain.graph), rtol=1e-4, atol=1e-5)


def test_the_schedule_follows_the_optimisers_step_count(data):
    """A learning rate of 0 from step 4 on: the parameters after 6 steps are those after 4."""
    x, y = data
    schedule = optax.piecewise_constant_schedule(0.1, {4: 0.0})
    g = mlp(5, FEATURES)
    kw = dict(optimiser=ng.SGD(schedule), batch_size=48, shuffle=False, compile_tier="full")
    two = ng.train_graph(jax.random.key(1), g, x, y, epochs=2, **kw)
    three = ng.train_graph(jax.random.key(1), g, x, y, epochs=3, **kw)
    one = ng.train_graph(jax.random.key(1), g, x, y, epochs=1, **kw)
    np.testing.assert_array_equal(leaves(two.graph), leaves(three.graph))
    assert np.abs(leaves(two.graph) - leaves(one.graph)).max() > 1e-4


def test_a_scale_factor_is_traced_and_scales_the_values(data):
    x, y = data
    g = mlp(4, FEATURES)
    schedule = optax.constant_schedule(0.2)
    kw = dict(batch_size=32, compile_tier="full")
    half = ng.train_graph(jax.random.key(1), g, x, y, optimiser=ng.SGD(ScaledSchedule(schedule, 0.5)), **kw)
    quarter = ng.train_graph(jax.random.key(1), g, x, y, optimiser=ng.SGD(ScaledSchedule(schedule, 0.25)), **kw)
    assert (half.compiles, quarter.compiles) == (1, 0)
    plain = ng.train_graph(jax.random.key(1), g, x, y, optimiser=ng.SGD(0.05), **kw)
    np.testing.assert_allclose(leaves(quarter.graph), leaves(plain.graph), rtol=1e-6, atol=1e-7)
    assert np.abs(leaves(half.graph) - leaves(quarter.graph)).max() > 1e-4


def test_scaled_schedule_composes_and_prints():
    schedule = optax.linear_schedule(1.0, 0.0, 10)
    s = ScaledSchedule(ScaledSchedule(schedule, 2.0), 3.0)
    assert s.schedule is schedule and s.factor == 6.0 and float(s(5)) == pytest.approx(3.0)
    assert (s * 0.5).factor == 3.0 and (0.5 * s).factor == 3.0 and (s / 4).factor == 1.5
    assert s / ScaledSchedule(schedule, 3.0) == 2.0
    assert hash(s) == hash(ScaledSchedule(schedule, 6.0)) and "factor=6.0" in repr(s)
    with pytest.raises(TypeError, match="schedule must be callable"):
        ScaledSchedule(0.1)
    with pytest.raises(ValueError, match="factor must be a finite number"):
        ScaledSchedule(schedule, float("nan"))


def test_learning_rate_mutation_scales_a_schedule(key):
    schedule = optax.exponential_decay(0.1, 100, 0.5)
    spec = ng.Adam(schedule)
    new = ng.LearningRateMutation()(key, spec)
    lr = new.learning_rate
    assert isinstance(lr, ScaledSchedule) and lr.schedule is schedule and 0.85 <= lr.factor <= 1.15 and lr.factor != 1
    assert float(lr(50)) == pytest.approx(lr.factor * float(schedule(50)))
    again = ng.LearningRateMutation()(jax.random.key(5), new)
    assert again.learning_rate.schedule is schedule and again.learning_rate.factor != lr.factor
    assert ng.OptimiserMutation([ng.SGD])(key, spec).learning_rate == spec.learning_rate
    a, b = ng.LearningRateCrossover()(key, (spec, ng.SGD(0.3)))
    assert a == ng.Adam(0.3) and b == ng.SGD(schedule)


def test_a_chain_with_a_scheduled_member_rescales():
    schedule = optax.constant_schedule(0.1)
    chain = ng.OptimiserChain(ng.WeightDecay(1e-3), ng.Momentum(schedule), ng.SGD(0.5))
    assert chain.learning_rate == ScaledSchedule(schedule, 0.5)
    halved = chain.with_learning_rate(chain.learning_rate * 0.5)
    assert halved.learning_rate == ScaledSchedule(schedule, 0.25)
    assert (
        halved.optimisers[1].learning_rate == ScaledSchedule(schedule, 0.5)
        and halved.optimisers[2].learning_rate == 0.5
    )


def test_specs_with_schedules_are_hashable_but_not_json(tmp_path, key):
    schedule = optax.cosine_decay_schedule(1e-2, 1000)
    spec = ng.Adam(schedule)
    assert spec == ng.Adam(schedule) and hash(spec) == hash(ng.Adam(schedule)) and spec != ng.Adam(1e-2)
    assert spec.skeleton() == ng.Adam(ScaledSchedule(schedule, 0.3)).skeleton()
    with pytest.raises(ValueError, match=r"Adam.to_dict: learning_rate is a schedule"):
        spec.to_dict()
    with pytest.raises(ValueError, match=r"SGD.to_dict: learning_rate is a schedule"):
        ng.OptimiserChain(ng.WeightDecay(), ng.ShieldedOpt(ng.SGD(schedule))).to_dict()
    assert json.loads(json.dumps(ng.Adam(1e-2).to_dict()))["learning_rate"] == 1e-2
    g = mlp(3, FEATURES)
    ng.save_population(tmp_path / "floats", ng.Population([ng.Candidate(g, optimiser=ng.Adam(1e-2), fitness=0.5)]))
    assert ng.load_population(tmp_path / "floats")[0].optimiser == ng.Adam(1e-2)
    with pytest.raises(ValueError, match=r"^Adam.to_dict: learning_rate is a schedule[^\n]*$"):
        ng.save_population(tmp_path / "schedule", ng.Population([ng.Candidate(g, optimiser=spec, fitness=0.5)]))


def test_a_schedule_must_be_callable_and_a_rate_a_number():
    with pytest.raises(TypeError, match="Adam: learning_rate must be a real number or a schedule"):
        ng.Adam("fast")
    with pytest.raises(TypeError, match="momentum must be a real number"):
        ng.Momentum(0.1, momentum=optax.constant_schedule(0.9))


@pytest.mark.parametrize("cls", [ng.SGD, ng.Momentum, ng.Nesterov, ng.Adam, ng.NAdam, ng.AdaGrad, ng.RMSProp, ng.AdamW])
def test_the_engines_first_state_of_a_scheduled_spec_is_optaxs_init(cls):
    """The engine builds a fresh state as zeros plus the injected values; for a schedule that is the factor."""
    from naivega_jax.train._step import _initial_carry

    g = mlp(3, FEATURES)
    spec = cls(ScaledSchedule(optax.linear_schedule(0.1, 0.0, 50), 0.5))
    ours = jax.tree_util.tree_leaves(_initial_carry(g, spec)[1])
    theirs = jax.tree_util.tree_leaves(spec.to_optax().init(g.params))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert spec.skeleton().learning_rate == ScaledSchedule(spec.learning_rate.schedule)
