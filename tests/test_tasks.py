"""Label functions and the batched generator against naive, obviously correct definitions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_envs import make_batch, tasks


def naive_label(task, bits, n):
    """The label of the window of the last n bits of ``bits`` (a Python list), straight from docs/envs.md."""
    window = bits[len(bits) - n :]
    if task == "parity":
        return sum(window) % 2
    return int(window[0] == window[-1])


sequences = st.lists(st.integers(0, 1), min_size=2, max_size=40)


@settings(max_examples=200, deadline=None)
@given(task=st.sampled_from(tasks.TASKS), bits=sequences, data=st.data())
def test_final_labels_match_naive(task, bits, data):
    ns = data.draw(st.lists(st.integers(tasks.MIN_N[task], len(bits)), min_size=1, max_size=5, unique=True))
    arr = np.array([bits], dtype=np.uint8)
    got = tasks.final_labels(task, arr, ns)
    assert got.dtype == np.int64
    assert got[0].tolist() == [naive_label(task, bits, n) for n in ns]


@settings(max_examples=200, deadline=None)
@given(task=st.sampled_from(tasks.TASKS), bits=sequences, data=st.data())
def test_streaming_labels_match_naive(task, bits, data):
    ns = data.draw(st.lists(st.integers(tasks.MIN_N[task], 45), min_size=1, max_size=5, unique=True))
    labels, mask = tasks.streaming_labels(task, np.array([bits], dtype=np.uint8), ns)
    for t in range(len(bits)):
        for k, n in enumerate(ns):
            assert mask[t, k] == (t + 1 >= n)
            expected = naive_label(task, bits[: t + 1], n) if t + 1 >= n else 0
            assert labels[0, t, k] == expected


def test_make_batch_shapes_dtypes_and_labels():
    batch = make_batch("parity", [2, 5, 3], 64, seed=1, streaming=True)
    T = batch.inputs.shape[0]
    assert batch.inputs.shape == (T, 64, 1) and batch.inputs.dtype == np.float32
    assert batch.inputs.flags.c_contiguous
    assert batch.labels.shape == (64, 3) and batch.labels.dtype == np.int64
    assert 5 + 2 <= T < 4 * 5 + 2
    bits = batch.inputs[:, :, 0].T.astype(int).tolist()
    for b in range(64):
        assert batch.labels[b].tolist() == [naive_label("parity", bits[b], n) for n in (2, 5, 3)]
    assert batch.streaming_labels.shape == (T, 64, 3) and batch.streaming_labels.dtype == np.int64
    assert batch.streaming_mask.shape == (T, 3)
    np.testing.assert_array_equal(batch.streaming_labels[-1], batch.labels)


def test_make_batch_is_seeded_and_rng_advances():
    a = make_batch("dms", [2, 4], 32, seed=7)
    b = make_batch("dms", [2, 4], 32, seed=7)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    rng = np.random.default_rng(7)
    first, second = make_batch("dms", 4, 32, rng=rng), make_batch("dms", 4, 32, rng=rng)
    assert first.inputs.shape != second.inputs.shape or not np.array_equal(first.inputs, second.inputs)


def test_make_batch_length_and_p_options():
    batch = make_batch("parity", 3, 1000, seed=0, length=50, p=0.5)
    assert batch.inputs.shape == (50, 1000, 1)
    assert abs(batch.inputs.mean() - 0.5) < 0.02
    ones = make_batch("dms", 3, 10, seed=0, p=1.0, length=9)
    assert ones.inputs.min() == 1.0 and (ones.labels == 1).all()
    uniform = make_batch("parity", 1, 4000, seed=0, length=20)  # per-sequence p ~ U(0, 1)
    per_seq = uniform.inputs[:, :, 0].mean(axis=0)
    assert per_seq.std() > 0.2  # spread far wider than Bernoulli(0.5) noise (std ~0.11)


def test_make_batch_to_torch_is_zero_copy():
    torch = pytest.importorskip("torch")
    batch = make_batch("parity", [2, 3], 8, seed=0, streaming=True)
    tensors = batch.to_torch()
    assert tensors["inputs"].dtype == torch.float32 and tensors["labels"].dtype == torch.int64
    assert tensors["inputs"].data_ptr() == batch.inputs.ctypes.data
    assert tensors["streaming_mask"].dtype == torch.bool


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(task="xor", ns=[2], batch_size=4), ValueError, "task"),
        (dict(task="parity", ns=[0], batch_size=4), ValueError, ">= 1"),
        (dict(task="dms", ns=[1], batch_size=4), ValueError, ">= 2"),
        (dict(task="parity", ns=[2.5], batch_size=4), TypeError, "integers"),
        (dict(task="parity", ns=[], batch_size=4), ValueError, "empty"),
        (dict(task="parity", ns=[2, 2], batch_size=4), ValueError, "duplicates"),
        (dict(task="parity", ns=[2], batch_size=0), ValueError, "batch_size"),
        (dict(task="parity", ns=[2], batch_size=4, p=1.5), ValueError, "p must be in"),
        (dict(task="parity", ns=[2], batch_size=4, p="half"), TypeError, "p must be"),
        (dict(task="parity", ns=[5], batch_size=4, length=3), ValueError, "length"),
        (dict(task="parity", ns=[5], batch_size=4, length_range=(3, 9)), ValueError, "length_range"),
        (dict(task="parity", ns=[5], batch_size=4, length_range=(9, 9)), ValueError, "low < high"),
        (dict(task="parity", ns=[5], batch_size=4, seed=1, rng=np.random.default_rng(1)), ValueError, "seed or rng"),
    ],
)
def test_make_batch_bad_input(kwargs, error, words):
    with pytest.raises(error, match=words):
        make_batch(**kwargs)
