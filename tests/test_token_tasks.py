"""The token tasks' rules (memory_envs.tasks.TokenTask) and their groups (memory_envs.groups), each
against a plain loop written here: a product over permutations, Python's own arithmetic."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from memory_envs import groups, tasks

ORDERS = {"z2": 2, "z3": 3, "z5": 5, "z60": 60, "s3": 6, "a4": 12, "a4xz5": 60, "s4": 24, "a5": 60, "s5": 120,
          "z2xz2xz3": 12}
DERIVED = {"z2": 1, "z60": 1, "z2xz2xz3": 1, "s3": 2, "a4": 2, "a4xz5": 2, "s4": 3, "a5": None, "s5": None}


@pytest.mark.parametrize("name", sorted(ORDERS))
def test_group_tables_are_groups(name: str) -> None:
    g = groups.group(name)
    t = g.table
    assert g.order == ORDERS[name] and t.shape == (g.order, g.order)
    elements = np.arange(g.order)
    assert np.array_equal(t[0], elements) and np.array_equal(t[:, 0], elements)  # 0 is the identity
    for row in t:  # a Latin square: every product row and column is a permutation
        assert sorted(row) == list(elements)
    a, b, c = np.meshgrid(elements, elements, elements, indexing="ij")
    assert np.array_equal(t[t[a, b], c], t[a, t[b, c]])  # associative
    assert np.array_equal(t[elements, g.inverse()], np.zeros(g.order, dtype=np.int64))


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_derived_length_and_solvability(name: str) -> None:
    g = groups.group(name)
    assert g.derived_length == DERIVED[name]
    assert g.solvable == (DERIVED[name] is not None)
    assert g.abelian == (DERIVED[name] == 1)


def test_permutation_product_applies_the_left_factor_first() -> None:
    perms = list(itertools.permutations(range(3)))
    t = groups.group("s3").table
    for i, a in enumerate(perms):
        for j, b in enumerate(perms):
            assert perms[t[i, j]] == tuple(b[a[k]] for k in range(3))
    evens = [p for p in itertools.permutations(range(4))
             if sum(p[x] > p[y] for x in range(4) for y in range(x + 1, 4)) % 2 == 0]
    t4 = groups.group("a4").table
    assert all(evens[t4[i, j]] == tuple(b[a[k]] for k in range(4))
               for i, a in enumerate(evens) for j, b in enumerate(evens))


@pytest.mark.parametrize("name", ["z5", "s3", "a5", "s5", "a4xz5"])
def test_word_problem_labels_are_the_running_product(name: str) -> None:
    task = tasks.token_task(tasks.WORD_PREFIX + name)
    rng = np.random.default_rng(0)
    tokens = task.sample(rng, 16, 50)
    assert tokens.shape == (16, 50) and tokens.dtype == np.uint8 and tokens.max() < task.vocab
    labels = task.labels(tokens)
    table = task.group.table
    for row, label_row in zip(tokens, labels):
        state = 0
        for token, label in zip(row, label_row):
            state = int(table[state, token])
            assert label == state
    assert task.label_mask(50).all() and task.classes == task.vocab == ORDERS[name]


def test_word_problem_on_a_product_group_is_the_two_factors_side_by_side() -> None:
    task = tasks.token_task("word_a4xz5")
    tokens = task.sample(np.random.default_rng(1), 8, 30)
    labels = task.labels(tokens)
    a4, z5 = tasks.token_task("word_a4"), tasks.token_task("word_z5")
    assert np.array_equal(labels // 5, a4.labels(tokens // 5))
    assert np.array_equal(labels % 5, z5.labels(tokens % 5))


def test_modular_arithmetic_labels_are_python_arithmetic_mod_5() -> None:
    task = tasks.token_task(tasks.MOD_ARITHMETIC)
    assert (task.vocab, task.classes) == (8, 5)
    tokens = task.sample(np.random.default_rng(2), 64, 21)
    assert (tokens[:, 0::2] < 5).all() and (tokens[:, 1::2] >= 5).all()
    labels, mask = task.labels(tokens), task.label_mask(21)
    assert mask.tolist() == [t % 2 == 0 for t in range(21)]
    for row, label_row in zip(tokens, labels):
        text = "".join(task.token_names[v] for v in row)
        for t in range(0, 21, 2):
            assert label_row[t] == eval(text[: t + 1]) % 5  # Python's precedence: * before + and -
        assert not label_row[1::2].any()


@pytest.mark.parametrize("text, value", [("1+2*3", 2), ("1-1-1", 4), ("0*1+4*3-2", 0), ("4", 4), ("2*3*4-1*1", 3)])
def test_modular_arithmetic_examples_of_deletang_et_al(text: str, value: int) -> None:
    task = tasks.token_task(tasks.MOD_ARITHMETIC)
    tokens = np.array([[task.token_names.index(c) for c in text]], dtype=np.uint8)
    assert task.labels(tokens)[0, -1] == value


@pytest.mark.parametrize("task_name", ["word_s3", "word_a4xz5", tasks.MOD_ARITHMETIC])
def test_scan_continues_where_a_former_call_ended(task_name: str) -> None:
    """The oracle's per-step update: labels scanned in pieces (odd-length ones too, so that modular arithmetic's
    digit steps shift) equal the labels of the whole sequence."""
    task = tasks.token_task(task_name)
    tokens = task.sample(np.random.default_rng(3), 8, 41)
    pieces, carry = [], None
    for start, stop in ((0, 1), (1, 4), (4, 5), (5, 20), (20, 41)):
        labels, carry = task.scan(tokens[:, start:stop], carry)
        pieces.append(labels)
    assert np.array_equal(np.concatenate(pieces, axis=1), task.labels(tokens))


def test_sampling_is_reproducible_from_the_generator() -> None:
    for name in ("word_s3", tasks.MOD_ARITHMETIC):
        task = tasks.token_task(name)
        a = task.sample(np.random.default_rng(7), 4, 33)
        b = task.sample(np.random.default_rng(7), 4, 33)
        assert np.array_equal(a, b)


@pytest.mark.parametrize("bad, message", [
    ("word_s6", "3 <= N <= 5"), ("word_z1", "2 <= K <= 127"), ("word_a5xz5", "order 300"),
    ("word_q3", "group must be"), ("word_", "group must be"), ("parity", "task must be"), ("mod", "task must be"),
])
def test_bad_task_names_are_refused_with_the_rule(bad: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tasks.token_task(bad)


def test_bad_group_argument_is_named() -> None:
    with pytest.raises(ValueError, match="group must be"):
        groups.group(3)  # type: ignore[arg-type]
    assert tasks.is_token_task("word_s3") and tasks.is_token_task(tasks.MOD_ARITHMETIC)
    assert not tasks.is_token_task("running_parity") and not tasks.is_token_task(None)
