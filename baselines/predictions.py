"""What theory says each kind can express on the state-tracking tasks, to print beside the measured card.

A prediction is about *expressivity* at a given depth and finite precision, for every length: "yes" means
some setting of the weights tracks the task at every length, "no" that none does (a theorem), None that the
theory we cite leaves it open. A "yes" row that measures at chance says the budget did not find the
solution (learnability), not that the theorem is wrong; a "no" row that measures near 1 at the test
lengths would contradict the theorem, or show a solution that holds only over finite lengths.

The rules, by the recurrence's transition (docs/leaderboard.md, version 3, gives the sources in full):

* Non-linear recurrences (the leaky RNN, GRU, LSTM, sLSTM): an RNN with a non-linear update can simulate any
  finite automaton, so every task here is expressible in one layer (Delétang et al. 2023; Merrill et al. 2024).
* Fixed transitions (LRU, S5) do not depend on the input: the state is a linear function of the tokens, which
  tracks none of these tasks at every length.
* Diagonal transitions in [0, 1] (Mamba, minGRU, mLSTM's forget gate) and products of generalized Householder
  matrices with beta in [0, 1] (DeltaNet, Gated DeltaNet, DeltaProduct as published): no negative eigenvalue,
  so no parity at any depth (Grazzi et al., ICLR 2025, Thm 1 and Prop. 1.3), and no complex one, so no
  counting modulo 3 or 5 (their Thm 2); every task here holds parity or such a count.
* Signed real diagonal transitions (``+signed`` Mamba and minGRU): parity in one layer, but real eigenvalues
  at every depth, so no count modulo 3 or 5 (Thm 2), hence none of S3, A5 (whose word problems hold Z3 and Z5
  counts) or modular arithmetic (sums modulo 5).
* One signed generalized Householder matrix per token (``+signed`` DeltaNet and Gated DeltaNet, whose gate is
  a real scalar): parity in one layer; a single symmetric matrix has real eigenvalues, so no count modulo 3
  in one layer (Thm 2), but two layers count modulo m (Grazzi et al., Thm 6); S3 needs two reflections per
  token in one layer (DeltaProduct README: DeltaProduct_1 [-1, 1] "is not expected to converge" on S3);
  S3 at two layers is open (Grazzi et al., section 6).
* n_h >= 2 signed reflections per token (``deltaproduct+signed``): a product of two reflections is a rotation,
  so one layer counts modulo m and tracks S3 (Grazzi et al., Thm 3: n_h reflections cover S_{n_h + 1}) and
  A5, the rotations of the icosahedron (a 3-d rotation is a product of two reflections); modular arithmetic
  (a monoid with resets, not a group) is left open.
* The transformer: no length generalization on these tasks (Delétang et al. 2023; Merrill et al. 2024: the
  depth it needs grows with the length).
"""

from __future__ import annotations

from agents.cores import CORES, LAYER_KINDS
from baselines.train_config import SIGNED

CARD_TASKS = ("running_parity", "running_mod3", "word_s3", "word_a5", "mod_arithmetic")
"""The tasks this module predicts (the version-3 card's)."""

NON_LINEAR = ("leaky", "leaky_mod", "gru", "lstm", "slstm")
FIXED = ("lru", "s5")
DIAGONAL = ("mingru", "mamba", "mlstm")
HOUSEHOLDER = ("deltanet", "gated_deltanet", "deltaproduct")


def _householders(kind: str) -> int:
    """The reflections per token of a delta-rule kind at its default options (DeltaProduct's ``householders``)."""
    return CORES[kind].block_options.get("householders", 1)


def predicted(core: str, task: str, layers: int = 1) -> bool | None:
    """Whether ``core`` (a kind or ``KIND+signed``) can express ``task`` (one of :data:`CARD_TASKS`) at every
    length with ``layers`` blocks: True, False (a theorem says no), or None (open, or a kind or task these rules
    do not cover; the module docstring gives the rules)."""
    if task not in CARD_TASKS:
        return None
    signed = core.endswith(SIGNED)
    kind = core.removesuffix(SIGNED)
    if layers != 1 and kind not in LAYER_KINDS:
        return None
    if kind in NON_LINEAR:
        return True
    if kind == "transformer" or kind in FIXED:
        return False
    if kind in DIAGONAL:  # real eigenvalues at every depth: a signed one tracks parity only
        return signed and task == "running_parity"
    if kind in HOUSEHOLDER:
        if not signed:
            return False
        if task == "running_parity":
            return True
        if _householders(kind) >= 2:
            return None if task == "mod_arithmetic" else True
        if layers == 1:
            return False
        return True if task == "running_mod3" else None
    return None


def prediction_cell(core: str, task: str, layers: int = 1) -> str:
    """The score card's cell: "yes", "no" or "open" (module docstring)."""
    answer = predicted(core, task, layers)
    return "open" if answer is None else "yes" if answer else "no"


PREDICTION_NOTE = """\
- theory: can the kind express the task at every length at this depth? "yes" / "no" (a theorem; for the
  transformer the published tables) / "open"
  (baselines/predictions.py gives each rule and its source; docs/leaderboard.md, version 3). A "yes" at chance
  is a budget that did not find the solution, not a counterexample."""
"""What ``scorecard.md`` says below a table with a theory column."""


SOLVED = 0.9
"""A row is solved when its median scaled accuracy over the test lengths reaches this."""
NOT_SOLVED = 0.5
"""A row a theorem says "no" to disagrees with it when its median reaches this (half-way to solved)."""


def verdict(theory: str, scaled_mean: float) -> str:
    """How a measured median scaled accuracy stands to the prediction cell ``theory``: "agrees", "not learned"
    (expressible, but the budget did not find it), "disagrees" (a "no" row at or above :data:`NOT_SOLVED`), or
    "" for an open one."""
    if theory == "yes":
        return "agrees" if scaled_mean >= SOLVED else "not learned"
    if theory == "no":
        return "agrees" if scaled_mean < NOT_SOLVED else "disagrees"
    return ""


def is_predicted(task: str) -> bool:
    """Whether ``task`` has predictions here (one of :data:`CARD_TASKS`, all running tasks)."""
    return task in CARD_TASKS


__all__ = ["CARD_TASKS", "NOT_SOLVED", "PREDICTION_NOTE", "SOLVED", "is_predicted", "predicted", "prediction_cell",
           "verdict"]
