import copy
import itertools
import pickle
import time

import jax
import numpy as np
import pytest

import naivega_jax as ng


def lists(it):
    return [
        np.asarray(b).tolist() if not isinstance(b, tuple) else tuple(np.asarray(p).tolist() for p in b) for b in it
    ]


def flat(nested):
    return list(itertools.chain.from_iterable(nested))


def double(x):
    return 2 * x


# --- data iterators: partitions, batches, timing, rebatching, per-generation chunks ------------------------------


def test_repeat_partition_chunks_reiterate_identically():
    chunks = list(ng.RepeatPartitionIterator(range(1, 21), 5))
    assert len(chunks) == 4
    for chunk, expected in zip(chunks, [range(1, 6), range(6, 11), range(11, 16), range(16, 21)]):
        for _ in range(3):
            assert list(chunk) == list(expected)


def test_batch_iterator_last_batch_partial_and_zero_batch_size_rejected():
    data = np.arange(2 * 3 * 4 * 5).reshape(5, 4, 3, 2)  # upstream's 2x3x4x5 array, batch axis first here
    batches = list(ng.BatchIterator(data, 2))
    assert len(batches) == 3
    assert [b.shape for b in batches] == [(2, 4, 3, 2), (2, 4, 3, 2), (1, 4, 3, 2)]
    assert np.array_equal(np.concatenate(batches), data)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        ng.BatchIterator(np.arange(1, 21), 0)


def sleepy_loop(it, sleep_if):
    last = None
    for i in it:
        last = i
        if sleep_if(i):
            time.sleep(0.11)
    return last


def test_timed_iterator_stops_at_item_6():
    it = ng.TimedIterator(
        range(1, 11),
        time_limit=0.1,
        patience=4,
        timeout_action=lambda: ng.TimedIterator.STOP,
        accumulate_timeouts=False,
    )
    assert sleepy_loop(it, lambda i: i > 2) == 6  # slow steps after 3, 4, 5, 6: the 4th reaches the patience


@pytest.mark.parametrize(("accumulate", "expected"), [(True, 7), (False, 0)])
def test_timed_iterator_counts_timeouts(accumulate, expected):
    calls = []
    it = ng.TimedIterator(
        range(1, 11), 0.1, patience=2, timeout_action=lambda: calls.append(1), accumulate_timeouts=accumulate
    )
    assert list(it) == list(range(1, 11)) and calls == []
    assert sleepy_loop(it, lambda i: i % 2 == 0) == 10  # the action does not stop iteration
    assert len(calls) == expected


def test_rebatching_keeps_order():
    it = ng.ReBatchingIterator(ng.BatchIterator(np.arange(1, 21), 4), 8)
    assert lists(it) == [list(range(1, 9)), list(range(9, 17)), list(range(17, 21))]


def test_stateful_generation_iter_gives_chunk_i_for_generation_i():
    rpi = ng.RepeatPartitionIterator(ng.BatchIterator(np.arange(1, 21), 3), 4)
    sgi = ng.StatefulGenerationIter(ng.RepeatPartitionIterator(ng.BatchIterator(np.arange(1, 21), 3), 4))
    chunks = list(rpi)
    assert len(chunks) == 2
    for generation, chunk in enumerate(chunks, start=1):
        assert lists(sgi(generation)) == lists(chunk)
        assert lists(sgi(generation)) == lists(chunk)  # unchanged generation: the same data


# --- BatchIterator -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "bs", "sizes"), [(10, 3, [3, 3, 3, 1]), (9, 3, [3, 3, 3]), (2, 5, [2]), (0, 4, [])])
def test_batch_iterator_lengths(n, bs, sizes):
    it = ng.BatchIterator(np.arange(n), bs)
    assert len(it) == len(sizes)
    assert [len(b) for b in it] == sizes


def test_batch_iterator_tuple_data_and_errors():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    batches = list(ng.BatchIterator((x, y), 4))
    assert [type(b) for b in batches] == [tuple] * 3
    assert np.array_equal(batches[2][0], x[8:]) and np.array_equal(batches[2][1], y[8:])
    with pytest.raises(ValueError, match=r"disagree on the batch \(first\) axis"):
        ng.BatchIterator((x, np.arange(9)), 4)
    with pytest.raises(TypeError, match="shuffle=True needs a key"):
        ng.BatchIterator(x, 4, shuffle=True)
    with pytest.raises(ValueError, match="positive int"):
        ng.BatchIterator(x, 2.5)


def test_shuffle_is_a_fresh_permutation_per_pass_and_reproducible_from_the_key():
    make = lambda seed: ng.BatchIterator(np.arange(20), 4, shuffle=jax.random.key(seed))
    it = make(0)
    first, second = lists(it), lists(it)
    for epoch in (first, second):
        assert sorted(flat(epoch)) == list(range(20))
    assert first != second
    assert first != list(np.arange(20).reshape(5, 4).tolist())
    fresh = make(0)
    assert lists(fresh) == first and lists(fresh) == second
    assert lists(make(1)) != first
    assert lists(it.iter_pass(1)) == second and lists(it.iter_pass(0, start=3)) == first[3:]


def test_shuffle_keeps_features_and_labels_together():
    x, y = np.arange(30).reshape(15, 2), np.arange(15)
    for xb, yb in ng.BatchIterator((x, y), 4, shuffle=jax.random.key(3)):
        assert np.array_equal(xb[:, 0], 2 * yb)


def test_copy_pickle_and_state_dict_replay_the_same_passes():
    it = ng.BatchIterator(np.arange(12), 5, shuffle=jax.random.key(7))
    snapshot = copy.deepcopy(it)
    pickled = pickle.loads(pickle.dumps(it))
    seen = [lists(it) for _ in range(3)]
    assert [lists(snapshot) for _ in range(3)] == seen
    assert [lists(pickled) for _ in range(3)] == seen
    assert it.state_dict() == {"next_pass": 3}
    resumed = ng.BatchIterator(np.arange(12), 5, shuffle=jax.random.key(7))
    resumed.load_state_dict({"next_pass": 1})
    assert lists(resumed) == seen[1]
    with pytest.raises(ValueError, match="next_pass must be an int >= 0"):
        resumed.load_state_dict({"next_pass": -1})


def test_cycle_runs_epochs_endlessly_with_new_orders():
    it = ng.BatchIterator(np.arange(6), 3, shuffle=jax.random.key(0), cycle=True)
    stream = it.iter_pass(0)
    epochs = [sorted(next(stream).tolist() + next(stream).tolist()) for _ in range(4)]
    assert epochs == [list(range(6))] * 4
    orders = [b.tolist() for b, _ in zip(it.iter_pass(0), range(8))]
    assert orders[:2] != orders[2:4]
    with pytest.raises(TypeError, match="infinite"):
        len(it)


# --- RepeatPartitionIterator / StatefulGenerationIter -------------------------------------------------------------


def test_repeat_partition_of_partitions():
    parts = [list(range(i, i + 5)) for i in range(1, 21, 5)]
    chunks = list(ng.RepeatPartitionIterator(parts, 2))
    assert [list(c) for c in chunks] == [parts[:2], parts[2:]]
    assert [list(c) for c in chunks] == [parts[:2], parts[2:]]


def test_repeat_partition_with_shuffle_reiterates_each_chunk_identically():
    base = ng.BatchIterator(np.arange(20), 3, shuffle=jax.random.key(123))
    rpi = ng.RepeatPartitionIterator(base, 4)
    first = list(rpi)
    assert [len(c) for c in first] == [4, 3]
    for chunk in first:
        assert lists(chunk) == lists(chunk) == lists(chunk)
    assert sorted(flat(flat(lists(c) for c in first))) == list(range(20))
    second = list(rpi)  # a new pass: a new shuffle
    assert lists(second[0]) != lists(first[0])
    assert lists(rpi.chunk(1, pass_index=0)) == lists(first[1])


def test_repeat_partition_over_seeded_cycle_multi_epoch():
    base = ng.SeedIterator(
        ng.BatchIterator(np.arange(20), 3, shuffle=jax.random.key(123), cycle=True), jax.random.key(5)
    )
    rpi = ng.RepeatPartitionIterator(base, 10)
    chunks = [c for c, _ in zip(rpi, range(4))]  # 40 batches: almost 6 epochs of 7
    for chunk in chunks:
        assert lists(chunk) == lists(chunk)
    items = flat(flat(lists(c) for c in chunks))
    assert sorted(items[:20]) == list(range(20)) and sorted(items[20:40]) == list(range(20))


def test_repeat_partition_rejects_one_shot_and_bad_n():
    with pytest.raises(TypeError, match="re-iterable"):
        ng.RepeatPartitionIterator(iter(range(5)), 2)
    with pytest.raises(ValueError, match="n must be a positive int"):
        ng.RepeatPartitionIterator(range(5), 0)


def test_generation_iter_wraps_around_with_a_new_pass():
    rpi = ng.RepeatPartitionIterator(ng.BatchIterator(np.arange(12), 3, shuffle=jax.random.key(0)), 2)
    sgi = ng.StatefulGenerationIter(rpi)
    g1, g2, g3 = (lists(sgi(g)) for g in (1, 2, 3))
    assert sorted(flat(g1 + g2)) == list(range(12))
    assert g3 != g1 and sorted(flat(g3 + lists(sgi(4)))) == list(range(12))
    assert lists(sgi(3)) == g3
    assert lists(pickle.loads(pickle.dumps(sgi))(3)) == g3  # pure in the generation: another process agrees
    with pytest.raises(ValueError, match="before first_generation"):
        sgi(0)
    assert lists(ng.StatefulGenerationIter(rpi, first_generation=0)(0)) == g1


def test_generation_iter_with_unknown_length_base():
    rebatched = ng.ReBatchingIterator(ng.BatchIterator(np.arange(10), 3), 2)  # 5 batches, length not known
    sgi = ng.StatefulGenerationIter(ng.RepeatPartitionIterator(rebatched, 2))
    assert [lists(sgi(g)) for g in (1, 2, 3, 4)] == [
        [[0, 1], [2, 3]],
        [[4, 5], [6, 7]],
        [[8, 9]],
        [[0, 1], [2, 3]],
    ]


def test_generation_iter_requires_a_partition():
    with pytest.raises(TypeError, match="RepeatPartitionIterator"):
        ng.StatefulGenerationIter(range(3))


# --- SeedIterator, MapIterator, ReBatchingIterator -----------------------------------------------------------------


def test_seed_iterator_makes_every_pass_identical_and_depends_on_its_key():
    x = np.arange(8 * 4).reshape(8, 4, 1).astype(np.float32)
    make = lambda: ng.FlipIterator(
        ng.BatchIterator(x, 4, shuffle=jax.random.key(1)), p=0.5, key=jax.random.key(2), axis=1
    )
    unseeded = make()
    assert lists(unseeded) != lists(unseeded)
    seeded = ng.SeedIterator(make(), jax.random.key(3))
    assert lists(seeded) == lists(seeded)
    assert lists(ng.SeedIterator(make(), jax.random.key(4))) != lists(seeded)


def test_map_iterator():
    assert list(ng.MapIterator(double, [1, 2, 3, 4, 5])) == [2, 4, 6, 8, 10]
    with pytest.raises(TypeError, match="fn must be callable"):
        ng.MapIterator(3, [1])


def test_rebatching_tuples_split_and_carry():
    pairs = ng.ReBatchingIterator(ng.BatchIterator((np.arange(1, 21), np.arange(21, 41)), 4), 8)
    assert lists(pairs) == [
        (list(range(1, 9)), list(range(21, 29))),
        (list(range(9, 17)), list(range(29, 37))),
        (list(range(17, 21)), list(range(37, 41))),
    ]
    split = ng.ReBatchingIterator(ng.BatchIterator(np.arange(1, 21), 8), 4)
    assert lists(split) == [list(range(i, i + 4)) for i in range(1, 21, 4)]
    carried = lists(ng.ReBatchingIterator(ng.BatchIterator(np.arange(20), 3), 4))
    assert [len(b) for b in carried] == [4] * 5  # remainders carried forward: no partial batch mid-stream
    assert flat(carried) == list(range(20))


def test_rebatching_keeps_a_shuffled_order():
    base = ng.BatchIterator(np.arange(20), 3, shuffle=jax.random.key(9))
    rebatched = ng.ReBatchingIterator(base, 7)
    assert flat(lists(rebatched.iter_pass(0))) == flat(lists(base.iter_pass(0)))


def test_rebatching_rejects_non_array_items():
    with pytest.raises(TypeError, match="arrays or tuples of arrays"):
        list(ng.ReBatchingIterator([1, 2, 3], 2))


def test_timed_iterator_validation():
    with pytest.raises(ValueError, match="time_limit"):
        ng.TimedIterator(range(3), 0)
    with pytest.raises(ValueError, match="patience"):
        ng.TimedIterator(range(3), 1.0, patience=0)
    with pytest.raises(TypeError, match="timeout_action"):
        ng.TimedIterator(range(3), 1.0, timeout_action=5)


# --- pickling of every iterator -------------------------------------------------------------------------------------


def every_iterator():
    key = jax.random.key(0)
    x = np.arange(6 * 4 * 4 * 2, dtype=np.float32).reshape(6, 4, 4, 2)
    y = np.arange(6)
    batches = ng.BatchIterator((x, y), 4, shuffle=key)
    rpi = ng.RepeatPartitionIterator(batches, 1)
    return {
        "batch": batches,
        "rpi": rpi,
        "chunk": rpi.chunk(1),
        "seed": ng.SeedIterator(batches, key),
        "map": ng.MapIterator(double, [1, 2]),
        "rebatch": ng.ReBatchingIterator(batches, 3),
        "timed": ng.TimedIterator(batches, 10.0, timeout_action=None),
        "flip": ng.FlipIterator(batches, key=key),
        "shift": ng.ShiftIterator(batches, (1, 2), key=key),
    }


def materialise(it):
    out = []
    for item in it:
        out.append(lists(item) if isinstance(item, ng.data._iterators._Chunk) else item)
    return repr(out)


@pytest.mark.parametrize("name", sorted(every_iterator()))
def test_pickle_round_trip(name):
    it = every_iterator()[name]
    restored = pickle.loads(pickle.dumps(it))
    assert materialise(restored) == materialise(it)
    assert materialise(restored) == materialise(it)  # the second passes agree too
    sgi = ng.StatefulGenerationIter(every_iterator()["rpi"])
    assert lists(pickle.loads(pickle.dumps(sgi))(2)) == lists(sgi(2))
