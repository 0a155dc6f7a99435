"""The task definitions: one home for N-parity, N-DMS and running parity.

Everything that produces a label (the single env, the vector env, the batched
generator, the oracle) calls the functions here; nothing re-derives one.

A trial is a bit sequence x_1..x_M fed one bit per step (docs/envs.md):

* N-parity: label = (x_{M-N+1} + ... + x_M) mod 2.
* N-DMS (N >= 2): label = 1 if x_{M-N+1} == x_M else 0.
* Streaming ("every step") labels: at every step t >= N the label of the
  window x_{t-N+1..t}; steps t < N have no label (masked).

Running parity (the state-tracking task of Deletang et al. 2023 and Grazzi et al. 2025) has no N:
the label at step t is (x_1 + ... + x_t) mod k (``modulus`` k, default 2), the parity of the whole
sequence so far, so a trial's length, not N, sets its difficulty; every step has a label. Its
length-generalization protocol trains on short trials (:data:`RUNNING_TRAIN_LENGTHS`) and tests on
longer ones (:data:`RUNNING_TEST_LENGTHS`, :data:`RUNNING_FAR_LENGTH`), scoring
:func:`scaled_accuracy`.

Bits are stored as ``uint8`` arrays of shape ``[B, T]`` (one row per sequence).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from memory_envs import groups

TASKS: tuple[str, ...] = ("parity", "dms")
MIN_N: dict[str, int] = {"parity": 1, "dms": 2}
UNIFORM = "uniform"
"""Bit probability mode: per sequence p ~ U(0, 1), then x_t ~ Bernoulli(p)."""
DEFAULT_P: dict[str, float | str] = {"parity": UNIFORM, "dms": 0.5, "running_parity": 0.5}
"""The paper's bit statistics per task (running parity: fair bits, so the parity is a fair coin at every step)."""
DEFAULT_N: dict[str, int] = {"parity": 4, "dms": 6}
"""The N of an env made without ``n=`` or ``heads=`` (the Easy presets: every baseline of the score card solves it)."""

RUNNING_PARITY = "running_parity"
"""The state-tracking task (its own concept: :data:`TASKS` are the windowed tasks with an N)."""
ALL_TASKS: tuple[str, ...] = (*TASKS, RUNNING_PARITY)
RUNNING_N = 0
"""The "N" running parity reports where the windowed tasks report theirs (``info["ns"]``, ``Batch.ns``):
0, no window, the label covers the whole sequence so far."""
DEFAULT_MODULUS = 2
RUNNING_TRAIN_LENGTHS: tuple[int, int] = (3, 41)
"""The protocol's training lengths, half-open: U[3, 40] as in Deletang et al. and Grazzi et al."""
RUNNING_TEST_LENGTHS: tuple[int, ...] = (40, 64, 96, 128, 160, 192, 224, 256)
"""The protocol's test lengths, 40 to 256, whose scaled accuracies are averaged (the papers' range)."""
RUNNING_FAR_LENGTH = 1000
"""The protocol's one far test length, reported beside the average."""
RUNNING_TEST_SEQUENCES = 1024
"""Fresh sequences per test length: the standard error of a scaled accuracy is then at most
1/sqrt(1024) = 0.031 per length (about 0.011 for the mean over the eight test lengths)."""


def check_task(task: str) -> str:
    """Return ``task`` if it is a known task name, else raise ValueError."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return task


def check_seed(seed: object, name: str = "seed") -> int:
    """An integer seed in [0, 2**63) (what numpy and torch both take); ValueError naming ``name`` otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**63:
        raise ValueError(f"{name} must be an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` as an int if it is an integer >= 1 (bools excluded), else raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_ns(task: str, ns: Sequence[int] | int, argument: str = "ns") -> tuple[int, ...]:
    """Validate a list of Ns for ``task``: non-empty, integers >= the task's minimum, no duplicates.

    Returns the Ns as a tuple of Python ints, in the given order.
    """
    check_task(task)
    one = isinstance(ns, numbers.Integral) and not isinstance(ns, bool)
    if one:
        ns = [ns]
    if isinstance(ns, (str, bytes)) or not isinstance(ns, Sequence) and not isinstance(ns, np.ndarray):
        raise TypeError(f"{argument} must be an integer or a list of integers, got {ns!r}")
    out = []
    for n in ns:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"{argument} must contain integers, got {n!r} ({type(n).__name__})")
        if n < MIN_N[task]:
            raise ValueError(f"{argument} must be {'an integer' if one else 'integers'} >= {MIN_N[task]} for task "
                             f"{task!r}, got {int(n)}")
        out.append(int(n))
    if not out:
        raise ValueError(f"{argument} must not be empty")
    if len(set(out)) != len(out):
        raise ValueError(f"{argument} must not contain duplicates, got {out}")
    return tuple(out)


def check_p(task: str, p: float | str | None) -> float | str:
    """Resolve the bit probability: ``None`` -> the task's paper default, ``"uniform"``, or a float in [0, 1]."""
    if p is None:
        key = RUNNING_PARITY if is_count_task(task) else task  # running_modK: running parity's bits
        if key not in ALL_TASKS:
            raise ValueError(f"task must be one of {ALL_TASKS}, got {task!r}")
        return DEFAULT_P[key]
    if p == UNIFORM:
        return UNIFORM
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a float in [0, 1], 'uniform' or None, got {p!r}")
    if not 0.0 <= float(p) <= 1.0 or np.isnan(p):
        raise ValueError(f"p must be in [0, 1] (or 'uniform' / None), got {p!r}")
    return float(p)


MAX_MODULUS = 127
"""The largest running-parity modulus: the envs hold labels as int8."""


def check_modulus(modulus: object) -> int:
    """Return ``modulus`` as an int if it is an integer in [2, MAX_MODULUS] (bools excluded), else raise ValueError."""
    if (isinstance(modulus, bool) or not isinstance(modulus, numbers.Integral)
            or not 2 <= modulus <= MAX_MODULUS):
        raise ValueError(f"modulus must be an integer >= 2 and <= {MAX_MODULUS} (2: parity; the envs hold labels "
                         f"as int8), got {modulus!r}")
    return int(modulus)


RUNNING_MOD_PREFIX = "running_mod"
"""``running_mod`` + K names running parity with modulus K (``running_mod3``: the count mod 3), so that one list
of task names can hold parity and a mod-K count."""
COUNT_TASK_RULE = f"{RUNNING_PARITY!r} or {RUNNING_MOD_PREFIX!r} + K, K an integer in [2, {MAX_MODULUS}] (running_mod3)"


def is_count_task(task: object) -> bool:
    """Whether ``task`` names a running count over bits (``running_parity`` or ``running_mod`` + anything: a bad
    K is refused by :func:`count_modulus`)."""
    return isinstance(task, str) and (task == RUNNING_PARITY or task.startswith(RUNNING_MOD_PREFIX))


def count_modulus(task: str, modulus: int | None = None) -> int:
    """The k of a running count task: ``running_parity`` counts mod ``modulus`` (default 2), ``running_modK`` mod K
    (``modulus``, if given, must be K). ValueError naming ``task`` or ``modulus`` otherwise."""
    if task == RUNNING_PARITY:
        return check_modulus(DEFAULT_MODULUS if modulus is None else modulus)
    if not is_count_task(task):
        raise ValueError(f"task must be {COUNT_TASK_RULE}, got {task!r}")
    digits = task[len(RUNNING_MOD_PREFIX):]
    if not (digits.isascii() and digits.isdigit() and not digits.startswith("0")
            and 2 <= int(digits) <= MAX_MODULUS):
        raise ValueError(f"task must be {COUNT_TASK_RULE}, got {task!r}")
    if modulus is not None and modulus != int(digits):
        raise ValueError(f"modulus must be left out or {int(digits)} for task {task!r}, got {modulus!r}")
    return int(digits)


def check_running_lengths(length_range: Sequence[int] | None, name: str = "length_range") -> tuple[int, int]:
    """A half-open range [low, high) of running-parity trial lengths, low >= 1; None -> the training range."""
    if length_range is None:
        return RUNNING_TRAIN_LENGTHS
    return check_length_range(length_range, 1, name)


def check_test_lengths(lengths: object, name: str = "test_lengths") -> tuple[int, ...]:
    """A non-empty list of distinct positive test lengths (running parity), as a tuple of ints."""
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, (Sequence, np.ndarray)) or len(lengths) == 0:
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {lengths!r}")
    out = tuple(check_positive_int(length, name) for length in lengths)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not contain duplicates, got {list(out)}")
    return out


def running_labels(bits: np.ndarray, modulus: int = DEFAULT_MODULUS) -> np.ndarray:
    """Running-parity labels at every step: ``bits`` [B, T] -> int64 [B, T], label[b, t] = (x_1 + ... + x_{t+1}) mod k."""
    return np.cumsum(bits, axis=1, dtype=np.int64) % modulus


def scaled_accuracy(accuracy: float, classes: int = DEFAULT_MODULUS) -> float:
    """(accuracy - chance) / (1 - chance) with chance 1 / classes (a count's modulus, a group's order): 0 at
    chance, 1 when perfect (the papers' score)."""
    chance = 1.0 / classes
    return (accuracy - chance) / (1.0 - chance)


def default_length_range(n_max: int) -> tuple[int, int]:
    """The paper's sequence-length range [n_max + 2, 4 n_max + 2) (upper bound excluded)."""
    return (n_max + 2, 4 * n_max + 2)


def check_length_range(length_range: Sequence[int] | None, n_max: int, name: str = "length_range"
                       ) -> tuple[int, int]:
    """Validate a half-open length range [low, high) that can hold ``n_max`` bits; None -> the default."""
    if length_range is None:
        return default_length_range(n_max)
    try:
        low, high = length_range
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high), got {length_range!r}") from None
    for v in (low, high):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must hold integers, got {length_range!r}")
    if low < n_max:
        what = f"the largest N={n_max}" if n_max > 1 else "a bit"
        raise ValueError(f"{name} {tuple(length_range)} cannot hold {what}: low must be >= {n_max}")
    if high <= low:
        raise ValueError(f"{name} must satisfy low < high (high excluded), got {tuple(length_range)}")
    return (int(low), int(high))


def sample_lengths(rng: np.random.Generator, count: int, length_range: tuple[int, int]) -> np.ndarray:
    """Draw ``count`` sequence lengths uniformly from [low, high)."""
    return rng.integers(length_range[0], length_range[1], size=count)


DRAW_CHUNK = 1 << 20
"""Uniform floats drawn at once by :func:`sample_bits`: bounds its float64 temporary to 8 MiB."""


def sample_bits(rng: np.random.Generator, count: int, length: int, p: float | str) -> np.ndarray:
    """Draw ``count`` bit sequences of ``length`` bits as a uint8 array [count, length].

    ``p="uniform"`` draws one p ~ U(0, 1) per sequence (the paper's parity statistics);
    a float p is used for every bit. The uniform floats compared with p are drawn in chunks of
    ``DRAW_CHUNK`` (the same stream as one draw), so memory is the uint8 result plus 8 MiB.
    """
    probs = rng.random((count, 1)) if p == UNIFORM else p
    if count * length <= DRAW_CHUNK:
        return (rng.random((count, length)) < probs).astype(np.uint8)
    bits = np.empty(count * length, dtype=np.uint8)
    for start in range(0, bits.size, DRAW_CHUNK):
        stop = min(start + DRAW_CHUNK, bits.size)
        threshold = probs[np.arange(start, stop) // length, 0] if p == UNIFORM else probs
        np.less(rng.random(stop - start), threshold, out=bits[start:stop], casting="unsafe")
    return bits.reshape(count, length)


def batch_bytes(batch_size: int, length: int, heads: int, streaming: bool = False, vocab: int | None = None) -> int:
    """Bytes of a supervised batch of ``batch_size`` sequences of ``length`` bits scored for ``heads`` Ns:
    the uint8 bits, float32 inputs and int64 labels, and with ``streaming`` the every-step labels
    (int8, then int64) and the prefix parities. With ``vocab`` (a token task): the uint8 tokens, their one-hot
    float32 inputs of that width and the int64 labels of every step (twice with ``streaming``: [B, T], then
    [T, B])."""
    if vocab is not None:
        return batch_size * length * (1 + 4 * vocab + 8 * (1 + streaming)) + batch_size * 8 + length
    total = batch_size * length * (1 + 4) + batch_size * heads * 8
    if streaming:
        total += batch_size * length * heads * (1 + 8) + batch_size * (length + 1)
    return total


def final_labels(task: str, bits: np.ndarray, ns: Sequence[int]) -> np.ndarray:
    """Labels of whole sequences: ``bits`` [B, M] -> int64 [B, K], one column per N in ``ns``."""
    labels = np.empty((bits.shape[0], len(ns)), dtype=np.int64)
    for k, n in enumerate(ns):
        if task == "parity":
            labels[:, k] = bits[:, bits.shape[1] - n :].sum(axis=1, dtype=np.int64) & 1
        else:
            labels[:, k] = bits[:, -n] == bits[:, -1]
    return labels


def streaming_labels(task: str, bits: np.ndarray, ns: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Labels at every step: ``bits`` [B, T] -> (labels int8 [B, T, K], mask bool [T, K]).

    ``labels[b, t, k]`` is the label of the window ending at step t (0-based) for N = ns[k];
    it exists where ``mask[t, k]`` (t + 1 >= N) and is 0 elsewhere.
    """
    num, length = bits.shape
    labels = np.zeros((num, length, len(ns)), dtype=np.int8)
    mask = np.arange(1, length + 1)[:, None] >= np.asarray(ns)[None, :]
    if task == "parity":  # prefix[t] = parity of x_1..x_t; window parity = prefix[t] ^ prefix[t - N]
        prefix = np.zeros((num, length + 1), dtype=np.uint8)
        np.bitwise_xor.accumulate(bits, axis=1, out=prefix[:, 1:])
    for k, n in enumerate(ns):
        if n > length:
            continue
        if task == "parity":
            labels[:, n - 1 :, k] = prefix[:, n:] ^ prefix[:, : length + 1 - n]
        else:
            labels[:, n - 1 :, k] = bits[:, : length + 1 - n] == bits[:, n - 1 :]
    return labels, mask


WORD_PREFIX = "word_"
"""A group word problem's task name is ``word_`` + the group's name (``word_s3``, ``word_a5``)."""
MOD_ARITHMETIC = "mod_arithmetic"
MOD_ARITHMETIC_MODULUS = 5
OPERATORS = ("+", "-", "*")
"""Modular arithmetic's operator tokens, numbered ``MOD_ARITHMETIC_MODULUS`` + 0, 1, 2 after the digits."""
TOKEN_TASK_RULE = f"{MOD_ARITHMETIC!r} or {WORD_PREFIX!r} + a group ({groups.GROUP_RULE})"


@dataclass(frozen=True)
class TokenTask:
    """A state-tracking task over tokens 0..vocab-1 with one label in 0..classes-1 at each labelled step.

    Attributes:
        name: the task name (``word_s3``, ``mod_arithmetic``).
        vocab: the number of input tokens (observations are integers 0..vocab-1; one-hot in batches).
        classes: the number of label values; chance is 1 / classes.
        group: the group of a word problem (None for modular arithmetic).
    """

    name: str
    vocab: int
    classes: int
    group: groups.Group | None = None

    @property
    def token_names(self) -> tuple[str, ...]:
        """What each token stands for (render, docs): the group's element numbers, or digits and operators."""
        if self.group is None:
            return (*(str(d) for d in range(MOD_ARITHMETIC_MODULUS)), *OPERATORS)
        return tuple(str(g) for g in range(self.vocab))

    def sample(self, rng: np.random.Generator, count: int, length: int) -> np.ndarray:
        """``count`` token sequences of ``length`` steps, uint8 [count, length]: uniform group elements, or
        uniform digits at the odd steps and uniform operators between them."""
        if self.group is not None:
            return rng.integers(0, self.vocab, size=(count, length), dtype=np.uint8)
        tokens = rng.integers(0, MOD_ARITHMETIC_MODULUS, size=(count, length), dtype=np.uint8)
        operators = rng.integers(0, len(OPERATORS), size=(count, length // 2), dtype=np.uint8)
        tokens[:, 1::2] = MOD_ARITHMETIC_MODULUS + operators
        return tokens

    def label_mask(self, length: int) -> np.ndarray:
        """bool [length]: the steps that have a label (every step; modular arithmetic: after each digit)."""
        mask = np.ones(length, dtype=bool)
        if self.group is None:
            mask[1::2] = False
        return mask

    def labels(self, tokens: np.ndarray) -> np.ndarray:
        """int64 [count, length]: the label at every step of ``tokens`` [count, length] (0 where
        :meth:`label_mask` is False)."""
        return self.scan(tokens)[0]

    def scan(self, tokens: np.ndarray, carry: tuple | None = None) -> tuple[np.ndarray, tuple]:
        """:meth:`labels` of ``tokens`` [count, length] continuing the sequences a former call ended, and the carry
        to continue from: ``scan(b, scan(a)[1])[0]`` equals the last steps of ``labels`` of ``a`` then ``b``
        (None: from the first step). The oracle's per-step update, linear in the episode's length."""
        count, length = tokens.shape
        out = np.zeros((count, length), dtype=np.int64)
        if self.group is not None:
            table, (state,) = self.group.table, carry or (np.zeros(count, dtype=np.int64),)
            for t in range(length):
                state = table[state, tokens[:, t]]
                out[:, t] = state
            return out, (state,)
        m = MOD_ARITHMETIC_MODULUS
        # the sum of the finished terms, the current term's sign (1 or m - 1) and product so far, whether the last
        # operator was *, and the steps read before (digits at the even steps)
        total, sign, term, multiply, start = carry or (np.zeros(count, dtype=np.int64), np.ones(count, dtype=np.int64),
                                                       np.zeros(count, dtype=np.int64), np.zeros(count, dtype=bool), 0)
        for t in range(length):
            token = tokens[:, t].astype(np.int64)
            if (start + t) % 2 == 0:
                term = np.where(multiply, term * token % m, token)
                out[:, t] = (total + sign * term) % m
            else:
                operator = token - m
                multiply = operator == OPERATORS.index("*")
                total = np.where(multiply, total, (total + sign * term) % m)
                sign = np.where(operator == OPERATORS.index("+"), 1,
                                np.where(operator == OPERATORS.index("-"), m - 1, sign))
        return out, (total, sign, term, multiply, start + length)


def is_token_task(task: object) -> bool:
    """Whether ``task`` names a token task (``mod_arithmetic`` or ``word_`` + anything: a bad group is
    refused by :func:`token_task`)."""
    return isinstance(task, str) and (task == MOD_ARITHMETIC or task.startswith(WORD_PREFIX))


def token_task(task: str) -> TokenTask:
    """The token task named ``task``; ValueError naming ``task`` and the rule otherwise."""
    if task == MOD_ARITHMETIC:
        return TokenTask(task, MOD_ARITHMETIC_MODULUS + len(OPERATORS), MOD_ARITHMETIC_MODULUS)
    if not is_token_task(task):
        raise ValueError(f"task must be {TOKEN_TASK_RULE}, got {task!r}")
    try:
        group = groups.group(task[len(WORD_PREFIX):])
    except ValueError as error:
        raise ValueError(f"task {task!r}: {error}") from None
    return TokenTask(task, group.order, group.order, group)


RUNNING_TASK_RULE = f"{COUNT_TASK_RULE}, {TOKEN_TASK_RULE}"


def is_running_task(task: object) -> bool:
    """Whether ``task`` names a running task: a label at every (labelled) step, no N, trained short and tested long
    (:func:`is_count_task` or :func:`is_token_task`)."""
    return is_count_task(task) or is_token_task(task)


def check_task_name(task: object) -> str:
    """Return ``task`` if it names a task (:data:`TASKS`, or a running task by :data:`RUNNING_TASK_RULE`), else
    raise ValueError naming ``task`` and the rule."""
    if task in TASKS:
        return str(task)
    if is_token_task(task):
        token_task(str(task))
    elif is_count_task(task):
        count_modulus(str(task))
    else:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, {RUNNING_TASK_RULE}; got {task!r}")
    return str(task)
