import jax
import pytest

import naivega_jax as ng
from naivega_jax.mutation._batchsize import mutate_batch_size

POW2 = tuple(2**i for i in range(1, 11))


def test_forced_relative_change():
    key = jax.random.key(0)
    assert ng.TrainBatchSizeMutation(-0.1, -0.1)(key, 16) == 14  # round(14.4)
    assert ng.TrainBatchSizeMutation(0.5, 0.5)(key, 16) == 24
    assert ng.TrainBatchSizeMutation(-1.0, -1.0)(key, 16) == 1  # never below 1


def test_int_form_with_mocked_uniform(key, mock_uniform):
    mock_uniform([0.25])
    # x = 0.25 * (0.3 - (-0.3)) - 0.3 = -0.15 -> round(16 * 0.85) = round(13.6) = 14
    assert ng.TrainBatchSizeMutation(-0.3, 0.3)(key, 16) == 14
    mock_uniform([0.9])
    # x = 0.24 -> round(19.84) = 20
    assert ng.TrainBatchSizeMutation(0.3, -0.3)(key, 16) == 20


def test_quantised_form():
    # from 16 (index 3), n = 10: step round(10 * 1.1) - 10 = 1 -> 32
    assert mutate_batch_size(POW2, 16, 0.1) == 32
    assert mutate_batch_size(POW2, 16, -0.1) == 8
    assert mutate_batch_size(POW2, 16, -0.3) == 2  # step -3 -> index 0
    assert mutate_batch_size(POW2, 16, -0.9) == 2  # clamped at the first index
    assert mutate_batch_size(POW2, 16, 0.9) == 1024  # clamped at the last index
    assert mutate_batch_size(POW2, 20, 0.0) == 16  # nearest allowed value
    assert mutate_batch_size(POW2, 24, 0.0) == 16  # a tie takes the first


def test_quantised_result_is_allowed(key):
    m = ng.TrainBatchSizeMutation(-0.3, 0.3, quantize_to=POW2)
    for k in jax.random.split(key, 20):
        assert m(k, 48) in POW2


def test_deterministic_and_varied(key):
    m = ng.TrainBatchSizeMutation(-0.5, 0.5)
    assert m(key, 100) == m(key, 100)
    assert len({m(k, 100) for k in jax.random.split(key, 20)}) > 5


@pytest.mark.parametrize(
    "args, error",
    [
        (("a", 0.1), ValueError),
        ((float("nan"), 0.1), ValueError),
        ((-0.1, 0.1, []), ValueError),
        ((-0.1, 0.1, [8, 0]), TypeError),
        ((-0.1, 0.1, 8), TypeError),
    ],
)
def test_bad_configuration(args, error):
    with pytest.raises(error, match="TrainBatchSizeMutation"):
        ng.TrainBatchSizeMutation(*args)


def test_bad_batch_size(key):
    with pytest.raises(TypeError, match="batch_size"):
        ng.TrainBatchSizeMutation(-0.1, 0.1)(key, 0)


def test_batch_size_crossover(key):
    c = ng.mutation.BatchSizeCrossover()
    assert c(key, (16, 64)) == (64, 16)
    assert c.target == "batch_size" and c.is_crossover
    p = ng.MutationProbability(c, 0.0)
    assert p.is_crossover and p(key, (16, 64)) == (16, 64)


def test_events(key):
    _, events = ng.mutation.record_events(ng.TrainBatchSizeMutation(1.0, 1.0), key, 8)
    assert events == ({"mutation": "TrainBatchSizeMutation", "old": 8, "new": 16},)
