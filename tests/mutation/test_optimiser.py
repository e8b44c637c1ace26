import jax
import pytest

import naivega_jax as ng


def types(o):
    return [type(x).__name__ for x in o.optimisers] if isinstance(o, ng.OptimiserChain) else type(o).__name__


def test_learning_rate_mutation(key, mock_uniform):
    mock_uniform([0.0])
    assert ng.LearningRateMutation()(key, ng.SGD(0.1)).learning_rate == pytest.approx(0.085)
    mock_uniform([1.0])
    assert ng.LearningRateMutation()(key, ng.SGD(0.1)).learning_rate == pytest.approx(0.115)


def test_learning_rate_mutation_clamps(key, mock_uniform):
    mock_uniform([0.0])
    assert ng.LearningRateMutation()(key, ng.SGD(1e-6)).learning_rate == 1e-6
    mock_uniform([1.0])
    assert ng.LearningRateMutation()(key, ng.SGD(1.0)).learning_rate == 1.0


def test_learning_rate_mutation_real_draws(key):
    m = ng.LearningRateMutation()
    lrs = [m(k, ng.Adam(0.01)).learning_rate for k in jax.random.split(key, 20)]
    assert all(0.0085 <= lr <= 0.0115 for lr in lrs)
    assert len(set(lrs)) == 20
    assert m(key, ng.Adam(0.01)) == m(key, ng.Adam(0.01))


def test_learning_rate_mutation_chain_and_shield(key, mock_uniform):
    mock_uniform([0.0])
    chain = ng.OptimiserChain(ng.WeightDecay(1e-3), ng.Momentum(0.1), ng.ShieldedOpt(ng.Adam(0.5)))
    new = ng.LearningRateMutation()(key, chain)
    assert new.optimisers[0] == chain.optimisers[0]
    assert new.optimisers[1].learning_rate == pytest.approx(0.085)
    assert new.optimisers[2] == chain.optimisers[2]
    shielded = ng.ShieldedOpt(ng.SGD(0.1))
    assert ng.LearningRateMutation()(key, shielded) == shielded
    assert ng.LearningRateMutation()(key, None) is None


def test_optimiser_mutation_function(key):
    m = ng.OptimiserMutation(lambda o: o.with_learning_rate(10 * o.learning_rate))
    assert m(key, ng.SGD(0.1)).learning_rate == pytest.approx(1.0)
    assert m(key, ng.ShieldedOpt(ng.Momentum(0.1))).learning_rate == pytest.approx(0.1)
    assert m(key, ng.OptimiserChain(ng.Nesterov(0.1), ng.ShieldedOpt(ng.Adam(0.1)))).learning_rate == pytest.approx(0.1)


def test_optimiser_mutation_types(key):
    m = ng.OptimiserMutation([ng.Momentum])
    assert m(key, ng.SGD(0.3)) == ng.Momentum(0.3)
    assert m(key, ng.ShieldedOpt(ng.SGD())) == ng.ShieldedOpt(ng.SGD())
    new = m(key, ng.OptimiserChain(ng.Nesterov(0.2), ng.WeightDecay(), ng.ShieldedOpt(ng.Adam())))
    assert types(new) == ["Momentum", "WeightDecay", "ShieldedOpt"]
    assert new.optimisers[0].learning_rate == 0.2


def test_optimiser_mutation_types_random(key):
    m = ng.OptimiserMutation((ng.Adam, ng.SGD, ng.RMSProp))
    seen = {type(m(k, ng.Momentum(0.1))).__name__ for k in jax.random.split(key, 30)}
    assert seen == {"Adam", "SGD", "RMSProp"}


@pytest.mark.parametrize("bad", [[], [int], [ng.OptimiserChain], 3])
def test_optimiser_mutation_bad_types(bad):
    with pytest.raises((TypeError, ValueError), match="OptimiserMutation"):
        ng.OptimiserMutation(bad)


def test_add_optimiser_mutation(key):
    m = ng.AddOptimiserMutation(lambda o: ng.SGD(0.1))
    assert types(m(key, ng.SGD(0.2))) == ["SGD"]
    assert m(key, ng.SGD(0.2)).learning_rate == pytest.approx(0.02)
    assert types(m(key, ng.Momentum(0.2))) == ["Momentum", "SGD"]
    assert m(key, ng.ShieldedOpt(ng.SGD())) == ng.ShieldedOpt(ng.SGD())
    chain = ng.OptimiserChain(ng.Nesterov(), ng.SGD(), ng.ShieldedOpt(ng.SGD()))
    assert types(m(key, chain)) == ["Nesterov", "ShieldedOpt", "SGD"]


def test_optimiser_mutations_in_chain_with_log(key, caplog):
    import logging

    m = ng.MutationChain(
        ng.LogMutation(lambda o: "First", ng.OptimiserMutation([ng.Momentum])),
        ng.LogMutation(lambda o: "Second", ng.AddOptimiserMutation(lambda o: ng.SGD())),
    )
    with caplog.at_level(logging.INFO, logger="naivega_jax.mutation"):
        new = m(key, ng.Nesterov())
    assert types(new) == ["Momentum", "SGD"]
    assert [r.getMessage() for r in caplog.records] == ["First", "Second"]


@pytest.mark.parametrize(
    "a, b",
    [
        (ng.Adam(), ng.Momentum()),
        (ng.OptimiserChain(ng.SGD(), ng.WeightDecay()), ng.OptimiserChain(ng.Momentum(), ng.Nesterov())),
    ],
)
def test_optimiser_crossover_swaps(key, a, b):
    oc = ng.OptimiserCrossover()
    ooc = ng.OptimiserCrossover(oc)
    assert oc(key, (a, b)) == ooc(key, (a, b)) == (b, a)


@pytest.mark.parametrize(
    "a, b",
    [
        (ng.SGD(), ng.Momentum()),
        (ng.SGD(), ng.OptimiserChain(ng.Momentum())),
        (ng.OptimiserChain(ng.SGD()), ng.OptimiserChain(ng.Momentum())),
    ],
)
def test_optimiser_crossover_shielded(key, a, b):
    oc = ng.OptimiserCrossover()
    for x, y in ((ng.ShieldedOpt(a), b), (a, ng.ShieldedOpt(b))):
        assert oc(key, (x, y)) == (x, y)
        assert oc(key, (y, x)) == (y, x)


def test_optimiser_crossover_inner_shield(key):
    oc = ng.OptimiserCrossover()
    a = ng.OptimiserChain(ng.ShieldedOpt(ng.SGD()))
    for b in (ng.Momentum(), ng.OptimiserChain(ng.Momentum())):
        assert oc(key, (a, b)) == (a, b)


def test_optimiser_crossover_cardinality(key):
    oc = ng.OptimiserCrossover()
    a, b = oc(key, (ng.SGD(), ng.OptimiserChain(ng.Momentum(), ng.WeightDecay())))
    assert types(a) == "Momentum" and types(b) == ["SGD", "WeightDecay"]
    a = ng.OptimiserChain(ng.SGD(), ng.WeightDecay(), ng.Momentum())
    b = ng.OptimiserChain(ng.Adam(), ng.AdamW(), ng.NAdam(), ng.RMSProp())
    an, bn = oc(key, (a, b))
    assert types(an) == ["Adam", "AdamW", "NAdam"]
    assert types(bn) == ["SGD", "WeightDecay", "Momentum", "RMSProp"]


def test_optimiser_crossover_per_member_probability(key, mock_uniform):
    mock_uniform([0.3, 0.1, 0.3])
    oc = ng.OptimiserCrossover(ng.MutationProbability(ng.OptimiserCrossover(), 0.2))
    a = ng.OptimiserChain(ng.SGD(), ng.WeightDecay(), ng.Momentum())
    b = ng.OptimiserChain(ng.Adam(), ng.AdaGrad(), ng.RMSProp())
    an, bn = oc(key, (a, b))
    assert types(an) == ["SGD", "AdaGrad", "Momentum"]
    assert types(bn) == ["Adam", "WeightDecay", "RMSProp"]


def test_learning_rate_crossover(key):
    lc = ng.LearningRateCrossover()
    a, b = lc(key, (ng.SGD(0.1), ng.Momentum(0.2)))
    assert (type(a), type(b)) == (ng.SGD, ng.Momentum)
    assert (a.learning_rate, b.learning_rate) == (0.2, 0.1)
    s = ng.ShieldedOpt(ng.SGD(0.1))
    assert lc(key, (s, ng.Momentum(0.2))) == (s, ng.Momentum(0.2))
    wd = ng.WeightDecay(0.1)
    assert lc(key, (wd, ng.Momentum(0.2))) == (wd, ng.Momentum(0.2))


def test_learning_rate_crossover_chains(key):
    a = ng.OptimiserChain(ng.SGD(0.1), ng.WeightDecay(0.01))
    b = ng.OptimiserChain(ng.Adam(0.3), ng.Momentum(0.5))
    an, bn = ng.LearningRateCrossover()(key, (a, b))
    assert types(an) == ["SGD", "WeightDecay"] and types(bn) == ["Adam", "Momentum"]
    assert an.optimisers[0].learning_rate == 0.3 and bn.optimisers[0].learning_rate == 0.1
    assert an.optimisers[1] == a.optimisers[1] and bn.optimisers[1] == b.optimisers[1]


def test_targets():
    for m in (ng.LearningRateMutation(), ng.OptimiserMutation([ng.SGD]), ng.AddOptimiserMutation(lambda o: ng.SGD())):
        assert m.target == "optimiser" and not m.is_crossover
    for c in (ng.OptimiserCrossover(), ng.LearningRateCrossover()):
        assert c.target == "optimiser" and c.is_crossover


def test_bad_inputs(key):
    with pytest.raises(TypeError, match="optimiser spec"):
        ng.LearningRateMutation()(key, "adam")
    with pytest.raises(TypeError, match="callable"):
        ng.AddOptimiserMutation(3)
    with pytest.raises(TypeError, match="optimiser crossover"):
        ng.OptimiserCrossover(ng.LearningRateMutation())
