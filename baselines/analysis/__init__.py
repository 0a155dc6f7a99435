"""The paper's analyses of trained networks (docs/analysis.md).

One module per question:

- :mod:`~baselines.analysis.runs`: run folders and checkpoints as the analyses read them.
- :mod:`~baselines.analysis.timescales`: random-bit drive, autocorrelation, tau_net and its summaries,
  the LSTM forget-gate timescale.
- :mod:`~baselines.analysis.fits`: the exponential fits behind tau_net (robust and paper rules).
- :mod:`~baselines.analysis.synthetic`: neurons with known timescales, to check the fits.
- :mod:`~baselines.analysis.lesions`: streaming accuracy, single-neuron ablation, weight and tau
  perturbation.
- :mod:`~baselines.analysis.generalization`: the forgetting/generalization matrix.
- :mod:`~baselines.analysis.geometry`: PCA dimensionality.
- :mod:`~baselines.analysis.transitions`: the sign of an input-dependent recurrence's transitions a_t, per
  input token (a signed network's flips).
- :mod:`~baselines.analysis.report`: ``analyze_run`` (tables and figures of a run folder) and
  ``compare_runs``.

Library functions take a model (``agents.MultiHeadModel``) and return plain numbers or numpy
arrays. All randomness goes through a ``torch.Generator`` or a numpy ``Generator`` seeded from a
``seed`` argument, so every result repeats exactly on CPU. The ``memory-envs analyze`` command is in
:mod:`baselines.cli.analyze`.
"""

from baselines.analysis.fits import (
    FIT_RULES, aic, ar1_ac_covariance, default_max_lag, default_min_weight, fit_timescale, fit_timescales, lag_grid,
)
from baselines.analysis.generalization import accuracy_on_ns, forgetting_matrix, readout_probe
from baselines.analysis.geometry import dimensionality
from baselines.analysis.lesions import (
    DEFAULT_EPS, TAU_PERTURB_TARGETS, Stream, ablate, ablation, make_stream, perturb_tau, perturb_weights, perturbation,
    perturbation_rows, recurrent_weight_param, relative_accuracies, streaming_accuracy, tau_order, trained_tau,
)
from baselines.analysis.report import (
    ANALYSES, SCALES, AnalysisOptions, analyze_run, compare_runs, plot_ablation, plot_dimensionality, plot_forgetting,
    plot_perturbation, plot_timescales, plot_transitions, read_csv, scaled_options, write_csv,
)
from baselines.analysis.runs import AnalysisError, Run, check_head, load_model, load_run
from baselines.analysis.synthetic import PAPER_CHECK_CASES, SyntheticCase, accuracy_row, fit_accuracy
from baselines.analysis.timescales import (
    DRIVE_P_CHOICES, ForgetGate, LagSums, OwnTimescale, autocorrelation, check_drive_p, drive, network_timescales,
    population_autocorrelation, tau_net_summary,
    timescales_from_lag_sums, trace_timescales,
)
from baselines.analysis.transitions import (
    alphabet_size, has_transitions, network_transitions, token_inputs, transition_kinds, transition_stats,
)

__all__ = [
    "ANALYSES", "DEFAULT_EPS", "SCALES", "DRIVE_P_CHOICES", "FIT_RULES", "PAPER_CHECK_CASES", "TAU_PERTURB_TARGETS", "AnalysisError",
    "AnalysisOptions", "ForgetGate", "LagSums", "OwnTimescale", "Run", "Stream", "SyntheticCase", "ablate", "ablation",
    "accuracy_on_ns", "accuracy_row", "aic", "alphabet_size", "analyze_run", "ar1_ac_covariance", "autocorrelation", "check_drive_p", "check_head",
    "compare_runs", "default_max_lag", "default_min_weight", "dimensionality", "drive", "fit_accuracy",
    "fit_timescale", "fit_timescales", "forgetting_matrix", "has_transitions", "lag_grid", "load_model", "load_run", "make_stream",
    "network_timescales", "network_transitions", "perturb_tau", "perturb_weights", "perturbation", "perturbation_rows", "plot_ablation", "plot_dimensionality",
    "plot_forgetting", "plot_perturbation", "plot_timescales", "plot_transitions", "population_autocorrelation", "read_csv", "readout_probe",
    "recurrent_weight_param", "relative_accuracies", "scaled_options", "streaming_accuracy", "tau_net_summary", "tau_order", "timescales_from_lag_sums",
    "token_inputs", "trace_timescales", "trained_tau", "transition_kinds", "transition_stats", "write_csv",
]
