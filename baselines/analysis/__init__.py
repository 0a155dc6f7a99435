"""The paper's analyses of trained networks (SPEC 5). See docs/analysis.md.

One module per question:

- :mod:`~baselines.analysis.runs`: run folders and checkpoints as the analyses read them.
- :mod:`~baselines.analysis.timescales`: random-bit drive, autocorrelation, exponential fits, tau_net,
  the LSTM forget-gate timescale.
- :mod:`~baselines.analysis.lesions`: streaming accuracy, single-neuron ablation, weight and tau
  perturbation.
- :mod:`~baselines.analysis.generalization`: the forgetting/generalization matrix.
- :mod:`~baselines.analysis.geometry`: PCA dimensionality.
- :mod:`~baselines.analysis.report`: ``analyze_run`` (tables and figures of a run folder) and
  ``compare_runs``.

Library functions take a model (``agents.MultiHeadModel``) and return plain numbers or numpy
arrays. All randomness goes through a ``torch.Generator`` or a numpy ``Generator`` seeded from a
``seed`` argument, so every result repeats exactly on CPU. The ``memory-envs analyze`` command is in
:mod:`baselines.cli.analyze`.
"""

from baselines.analysis.generalization import accuracy_on_ns, forgetting_matrix
from baselines.analysis.geometry import dimensionality
from baselines.analysis.lesions import (
    DEFAULT_EPS, Stream, ablate, ablation, make_stream, perturb_tau, perturb_weights, perturbation,
    recurrent_weight_param, streaming_accuracy,
)
from baselines.analysis.report import (
    ANALYSES, AnalysisOptions, analyze_run, compare_runs, plot_ablation, plot_dimensionality, plot_forgetting,
    plot_perturbation, plot_timescales, read_csv, write_csv,
)
from baselines.analysis.runs import AnalysisError, Run, check_head, load_model, load_run
from baselines.analysis.timescales import (
    ForgetGate, LagSums, aic, autocorrelation, drive, fit_timescale, fit_timescales, network_timescales,
    population_autocorrelation,
)

__all__ = [
    "ANALYSES", "DEFAULT_EPS", "AnalysisError", "AnalysisOptions", "ForgetGate", "LagSums", "Run", "Stream",
    "ablate", "ablation", "accuracy_on_ns", "aic", "analyze_run", "autocorrelation", "check_head", "compare_runs",
    "dimensionality", "drive", "fit_timescale", "fit_timescales", "forgetting_matrix", "load_model", "load_run",
    "make_stream", "network_timescales", "perturb_tau", "perturb_weights", "perturbation", "plot_ablation",
    "plot_dimensionality", "plot_forgetting", "plot_perturbation", "plot_timescales", "population_autocorrelation",
    "read_csv", "recurrent_weight_param", "streaming_accuracy", "write_csv",
]
