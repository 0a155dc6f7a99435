"""What baselines.predictions says each kind can express, against the theorems it cites, and its column on the
score card."""

from __future__ import annotations

import pytest

from baselines.benchmark import scorecard_rows
from baselines.predictions import CARD_TASKS, predicted, prediction_cell

PARITY, MOD3, S3, A5, ARITHMETIC = CARD_TASKS


@pytest.mark.parametrize("core", ["leaky", "gru", "lstm", "slstm"])
def test_non_linear_recurrences_express_every_task(core):
    assert all(predicted(core, task) for task in CARD_TASKS)


@pytest.mark.parametrize("core", ["mamba", "mingru", "mlstm", "deltanet", "gated_deltanet", "deltaproduct", "lru",
                                  "s5", "transformer"])
def test_no_negative_eigenvalue_means_no_task(core):
    """Grazzi et al. Thm 1 / Prop. 1.3: eigenvalues in [0, 1] (or fixed transitions) track no parity, at any depth."""
    assert not any(predicted(core, task, layers) for task in CARD_TASKS for layers in (1, 2))


@pytest.mark.parametrize("core", ["mamba+signed", "mingru+signed"])
def test_signed_real_diagonals_track_parity_and_no_count_modulo_3_at_any_depth(core):
    for layers in (1, 2, 3):
        assert predicted(core, PARITY, layers) is True
        assert [predicted(core, task, layers) for task in (MOD3, S3, A5, ARITHMETIC)] == [False] * 4


@pytest.mark.parametrize("core", ["deltanet+signed", "gated_deltanet+signed"])
def test_one_reflection_per_token_needs_two_layers_to_count_modulo_3(core):
    assert [predicted(core, task) for task in CARD_TASKS] == [True, False, False, False, False]
    assert predicted(core, MOD3, 2) is True  # Grazzi et al. Thm 6
    assert predicted(core, S3, 2) is None  # open (their section 6)


def test_two_reflections_per_token_track_s3_and_a5_in_one_layer():
    assert [predicted("deltaproduct+signed", task) for task in CARD_TASKS] == [True, True, True, True, None]
    assert [prediction_cell("deltaproduct+signed", task) for task in (S3, ARITHMETIC)] == ["yes", "open"]


def test_tasks_and_depths_outside_the_rules_are_open():
    assert predicted("gru", "word_z60") is None and predicted("gru", "parity") is None
    assert predicted("gru", S3, layers=2) is None  # the GRU has no layers option


def test_the_score_card_carries_the_prediction_beside_each_running_row():
    test = {"scaled_mean": 0.95, "scaled_far": 0.9}
    results = [{"core": core, "task": task, "curriculum": "none", "seed": seed, "layers": 1, "heldout": test,
                "max_n": None, "steps_to": {}, "timescales": {}}
               for core in ("gru", "mamba+signed") for task in (S3, "parity") for seed in (0, 1)]
    rows = {(r["core"], r["task"]): r for r in scorecard_rows([r for r in results if r["task"] == S3])}
    assert rows["gru", S3]["theory"] == "yes" and rows["mamba+signed", S3]["theory"] == "no"
    assert rows["gru", S3]["scaled_accuracy_mean_range"] == "[0.95, 0.95]"


def test_verdicts_and_the_card_table_say_where_measurement_and_theory_part(tmp_path):
    from baselines.benchmark import write_scorecard
    from baselines.predictions import verdict

    assert [verdict("yes", 0.95), verdict("yes", 0.3), verdict("no", 0.1), verdict("no", 0.7), verdict("open", 1.0)] \
        == ["agrees", "not learned", "agrees", "disagrees", ""]
    runs = [("gru", S3, 1.0), ("mamba+signed", S3, 0.8), ("deltaproduct+signed", ARITHMETIC, 0.4)]
    results = [{"core": core, "task": task, "curriculum": "none", "seed": seed, "layers": 1,
                "heldout": {"scaled_mean": score, "scaled_far": score, "scaled": {"40": score, "1000": score},
                            "train_lengths": [3, 41], "far_length": 1000},
                "max_n": None, "steps_to": {}, "timescales": {}} for core, task, score in runs for seed in (0, 1)]
    write_scorecard(results, tmp_path)
    card = (tmp_path / "scorecard.md").read_text()
    assert "| gru | 1 | 1.00 [1.00, 1.00]; 1.00; yes: agrees | - |" in card
    assert "| mamba+signed | 1 | 0.80 [0.80, 0.80]; 0.80; no: disagrees | - |" in card
    assert "| deltaproduct+signed | 1 | - | 0.40 [0.40, 0.40]; 0.40; open |" in card
