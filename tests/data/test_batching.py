"""Tests of tfnas.data.batching: batchify and the (variable-length) BPTT iterator."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfnas.data import BPTTIterator, batchify, epoch_iterator


# ----------------------------------------------------------------- batchify
def test_batchify_shape_and_rows_are_contiguous_chunks() -> None:
    data = batchify(np.arange(11, dtype=np.int64), 3)
    assert data.shape == (3, 3)
    assert data.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert data.dtype == np.int64
    assert data.flags.c_contiguous and data.flags.writeable


def test_batchify_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="batch_size=0"):
        batchify(np.arange(4), 0)
    with pytest.raises(ValueError, match="batch_size=5"):
        batchify(np.arange(4), 5)
    with pytest.raises(ValueError, match="1-D"):
        batchify(np.zeros((2, 2)), 1)
    with pytest.raises(ValueError) as info:
        batchify(np.arange(3), 4, source="the valid split (/data/valid.txt)")
    assert str(info.value) == ("the valid split (/data/valid.txt) holds 3 tokens, fewer than batch_size=4: "
                               "add text or lower the batch size")


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.integers(0, 2**31), min_size=1, max_size=300),
    batch_size=st.integers(1, 40),
)
def test_batchify_preserves_the_token_prefix(ids, batch_size) -> None:
    arr = np.asarray(ids, dtype=np.int64)
    if batch_size > arr.size:
        with pytest.raises(ValueError):
            batchify(arr, batch_size)
        return
    out = batchify(arr, batch_size)
    steps = arr.size // batch_size
    assert out.shape == (batch_size, steps)
    np.testing.assert_array_equal(out.reshape(-1), arr[: batch_size * steps])
    for b in range(batch_size):
        np.testing.assert_array_equal(out[b], arr[b * steps : (b + 1) * steps])


# ------------------------------------------------------------- BPTT iterator
def _reference_lengths(num_steps: int, bptt: int, seed: int, delta: int = 20) -> list[int]:
    """The AWD-LSTM/DARTS loop, written independently, with targets up to the end."""
    rng = np.random.default_rng(seed)
    lengths, i = [], 0
    while i < num_steps - 1:
        bptt_eff = bptt if rng.random() < 0.95 else bptt / 2.0
        seq_len = max(5, int(rng.normal(bptt_eff, 5)))
        seq_len = min(seq_len, bptt + delta)
        seq_len = min(seq_len, num_steps - 1 - i)
        lengths.append(seq_len)
        i += seq_len
    return lengths


def test_variable_lengths_match_the_reference_formula() -> None:
    data = np.arange(3 * 5000).reshape(3, 5000)
    lengths = [seg.seq_len for seg in BPTTIterator(data, 35, seed=7)]
    assert lengths == _reference_lengths(5000, 35, seed=7)


def test_epoch_iterator_draws_each_epoch_from_its_own_seed() -> None:
    data = np.arange(3 * 2000).reshape(3, 2000)
    # Epoch e of a run seeded s draws from seed s * 100_003 + e (what the trainer and the one-shot loop resume from).
    first, second = (epoch_iterator(data, 35, seed=3, epoch=e, max_seq_len_delta=10) for e in (1, 2))
    assert first.variable and first.seed == 3 * 100_003 + 1 and second.seed == 3 * 100_003 + 2
    first_lengths = [seg.seq_len for seg in first]
    assert first_lengths == _reference_lengths(2000, 35, seed=300_010, delta=10)
    assert first_lengths != [seg.seq_len for seg in second]
    assert max(first_lengths) <= 45


def test_length_distribution_about_95_percent_around_bptt() -> None:
    bptt = 70
    data = np.zeros((1, 400_001), dtype=np.int64)
    lengths = np.array([seg.seq_len for seg in BPTTIterator(data, bptt, seed=1234)])[:-1]
    assert lengths.size > 5000
    long = lengths[lengths > 0.75 * bptt]  # the two modes (70 and 35, sd 5) are 7 sd apart
    fraction_long = long.size / lengths.size
    assert 0.935 < fraction_long < 0.965  # 0.95 +- 5 standard errors
    assert abs(long.mean() - (bptt - 0.5)) < 0.3  # int() truncation lowers the mean by ~0.5
    assert 4.6 < long.std() < 5.4
    short = lengths[lengths <= 0.75 * bptt]
    assert abs(short.mean() - (bptt / 2 - 0.5)) < 1.0
    assert lengths.max() <= bptt + 20 and lengths.min() >= 5


def _darts_search_lengths(num_steps: int, bptt: int, seed: int) -> list[int]:
    """DARTS ``train_search.py``'s loop (its normal jitter commented out), written independently."""
    rng = np.random.default_rng(seed)
    lengths, i = [], 0
    while i < num_steps - 1:
        seq_len = int(bptt if rng.random() < 0.95 else bptt / 2.0)
        seq_len = min(seq_len, num_steps - 1 - i)
        lengths.append(seq_len)
        i += seq_len
    return lengths


def test_search_lengths_without_jitter_are_bptt_or_half_bptt() -> None:
    data = np.zeros((2, 100_001), dtype=np.int64)
    lengths = [s.seq_len for s in epoch_iterator(data, 35, seed=3, epoch=1, seq_len_std=0.0)]
    assert lengths == _darts_search_lengths(100_001, 35, seed=3 * 100_003 + 1)
    body = np.array(lengths[:-1])
    assert set(body.tolist()) == {35, 17}                        # int(35 / 2); no jitter, no clamping
    half = float(np.mean(body == 17))
    assert abs(half - 0.05) < 5 * np.sqrt(0.05 * 0.95 / body.size)
    odd = [s.seq_len for s in BPTTIterator(np.zeros((1, 2001), np.int64), 4, seed=0, seq_len_std=0.0)][:-1]
    assert set(odd) == {4, 2}                                    # below AWD-LSTM's minimum of 5


def test_a_fixed_length_draws_bptt_every_time() -> None:
    """ENAS (section 3.1): BPTT of 35 throughout."""
    data = np.zeros((2, 10_001), dtype=np.int64)
    lengths = [s.seq_len for s in epoch_iterator(data, 35, seed=1, epoch=2, seq_len_std=0.0, full_bptt_prob=1.0)]
    assert lengths[:-1] == [35] * (10_000 // 35) and lengths[-1] == 10_000 % 35


def test_length_bounds_min_5_and_cap_bptt_plus_delta() -> None:
    data = np.zeros((2, 20_000), dtype=np.int64)
    capped = [s.seq_len for s in BPTTIterator(data, 35, seed=3, max_seq_len_delta=0)][:-1]
    assert max(capped) == 35  # about half of the draws exceed bptt and are capped
    small = [s.seq_len for s in BPTTIterator(data, 4, seed=3)][:-1]
    assert min(small) == 5 and max(small) <= 24


def test_segments_content_and_lr_scale() -> None:
    data = np.arange(2 * 1000).reshape(2, 1000)
    inputs, targets, position = [], [], 0
    for seg in BPTTIterator(data, 20, seed=0):
        assert seg.lr_scale == seg.seq_len / 20
        assert seg.inputs.shape == seg.targets.shape == (2, seg.seq_len)
        np.testing.assert_array_equal(seg.inputs, data[:, position : position + seg.seq_len])
        np.testing.assert_array_equal(seg.targets, seg.inputs + 1)
        position += seg.seq_len
        inputs.append(seg.inputs)
        targets.append(seg.targets)
    np.testing.assert_array_equal(np.concatenate(inputs, axis=1), data[:, :-1])
    np.testing.assert_array_equal(np.concatenate(targets, axis=1), data[:, 1:])


def test_fixed_mode_uses_bptt_and_draws_no_random_numbers() -> None:
    data = np.arange(103).reshape(1, 103)
    iterator = BPTTIterator(data, 25, seed=0, variable=False)
    rng_before = json.dumps(iterator.state()["rng"])
    lengths = [s.seq_len for s in iterator]
    assert lengths == [25, 25, 25, 25, 2]  # 102 targets
    assert json.dumps(iterator.state()["rng"]) == rng_before


def _take(iterator: BPTTIterator, n: int | None = None) -> list:
    out = []
    for seg in iterator:
        out.append(seg)
        if n is not None and len(out) == n:
            break
    return out


def _assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.seq_len == y.seq_len and x.lr_scale == y.lr_scale
        assert x.inputs.tobytes() == y.inputs.tobytes()
        assert x.targets.tobytes() == y.targets.tobytes()


@pytest.mark.parametrize("k", [0, 1, 17])
def test_state_resumes_exactly_after_json_roundtrip(k) -> None:
    data = np.random.default_rng(0).integers(0, 1000, size=(4, 3000))
    original = BPTTIterator(data, 35, seed=11)
    _take(original, k)
    state = json.loads(json.dumps(original.state()))
    rest = _take(original)
    resumed = BPTTIterator.from_state(data, state)
    assert resumed.position == state["position"]
    _assert_same(_take(resumed), rest)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(0, 40), seed=st.integers(0, 2**32 - 1), bptt=st.integers(3, 50))
def test_set_state_resumes_exactly_across_epochs(k, seed, bptt) -> None:
    data = np.arange(3 * 700).reshape(3, 700)
    original = BPTTIterator(data, bptt, seed=seed)
    _take(original, k)
    state = original.state()
    expected = _take(original)
    original.start_epoch()
    expected_next_epoch = _take(original, 10)

    other = BPTTIterator(data, bptt, seed=seed + 1)  # different seed, overwritten by the state
    other.set_state(json.loads(json.dumps(state)))
    _assert_same(_take(other), expected)
    other.start_epoch()
    assert other.epoch == 1
    _assert_same(_take(other, 10), expected_next_epoch)


def test_set_state_rejects_mismatched_settings_or_data() -> None:
    data = np.zeros((2, 100), dtype=np.int64)
    state = BPTTIterator(data, 35, seed=0).state()
    with pytest.raises(ValueError, match="bptt=35"):
        BPTTIterator(data, 70, seed=0).set_state(state)
    with pytest.raises(ValueError, match="shape"):
        BPTTIterator(np.zeros((3, 100), dtype=np.int64), 35).set_state(state)
    with pytest.raises(ValueError, match="format"):
        BPTTIterator(data, 35).set_state({"position": 0})


def test_iterator_argument_errors() -> None:
    with pytest.raises(ValueError, match="bptt=0"):
        BPTTIterator(np.zeros((1, 10)), 0)
    with pytest.raises(ValueError, match=r"\[batch, time\]"):
        BPTTIterator(np.zeros(10), 5)
