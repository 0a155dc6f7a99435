"""The supervised trainer's configuration, :class:`TrainConfig`, and its checks.

:meth:`TrainConfig.validate` checks every field before a run touches the disk: names and ranges, the
seed, finite learning rate and momentum, that the core accepts its options (built once, on a throwaway
generator), and that a training step fits in memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

import agents
from agents.protocol import import_core_class, is_import_path
from memory_envs import Curriculum, sizes, tasks
from memory_envs.curriculum import LengthCurriculum
from memory_envs.tasks import check_seed

OPTIMIZERS = ("auto", "sgd", "adam")
CORES = agents.cores.KINDS
PAPER_LR = {"sgd": 0.05, "adam": 1e-3}
"""The paper's learning rate for each optimizer: SGD for its leaky RNN, Adam for its LSTM."""
KIND_OPTIMIZERS: dict[str, tuple[str, float]] = {
    "leaky": ("sgd", 0.05), "leaky_mod": ("sgd", 0.05),  # the paper's
    "gru": ("adam", 1e-3), "lstm": ("adam", 1e-3),  # the paper's LSTM setting; gated cores barely move under its SGD
    "mingru": ("adam", 3e-3),
    "mamba": ("adam", 3e-3), "deltanet": ("adam", 1e-2),
    "deltaproduct": ("adam", 1e-2), "gated_deltanet": ("adam", 1e-2),  # DeltaNet's, not swept
    "lru": ("adam", 3e-3), "s5": ("adam", 3e-3), "transformer": ("adam", 3e-3),
    "slstm": ("adam", 3e-3), "mlstm": ("adam", 3e-3),
}
"""What ``optimizer="auto"`` trains each built-in kind with (docs/leaderboard.md says how the zoo's were
chosen); an external core gets Adam at the paper's lr."""
RESUME_MAY_CHANGE = ("max_steps", "max_seconds", "device")
"""The config fields a resumed run may change; every other field must equal the folder's config.json."""
STOP_REASONS = ("target_reached", "max_steps", "max_seconds", "non_finite", "interrupted")
ACTIVATION_COPIES = 4
"""Float32 copies of the hidden activity [T, B, H] one training step keeps (forward, saved for backward,
gradients): the size check's estimate."""


def check_finite(value: object, name: str, minimum: float, strict: bool) -> None:
    """A finite number > ``minimum`` (``strict``) or >= it; ValueError naming ``name`` otherwise."""
    ok = (isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)
          and (value > minimum if strict else value >= minimum))
    if not ok:
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g} and finite, got {value!r}")


def refuse_changed(config: Any, names: Sequence[str], why: str) -> None:
    """ValueError "<the fields among ``names`` that ``config`` (a dataclass) changes from its defaults> ``why``"."""
    defaults = type(config)()
    changed = [name for name in names
               if tuple(np.atleast_1d(getattr(config, name))) != tuple(np.atleast_1d(getattr(defaults, name)))]
    if changed:
        raise ValueError(f"{', '.join(changed)} {why}")


def refuse_tau_options(config: Any, names: Sequence[str]) -> None:
    """ValueError naming the tau settings among ``names`` that ``config`` (a dataclass with a ``core``)
    changes from its defaults, unless its core has a per-neuron tau (or is an external core)."""
    if is_import_path(config.core) or config.core in agents.cores.TAU_KINDS:
        return
    refuse_changed(config, names, f"only apply to the cores with a per-neuron tau {agents.cores.TAU_KINDS}; "
                                  f"core {config.core!r} has none")


RUNNING_FIELDS = ("modulus", "length_range", "test_lengths", "far_length", "test_sequences")
"""The fields of the running tasks (a count's modulus and the length-generalization protocol,
docs/state_tracking.md): config.json holds them for their runs only, so the windowed tasks' run folders are as
before."""
N_CURRICULUM_FIELDS = ("start_n", "target_n", "window", "drop")
"""The fields of the curriculum over N, which the running tasks (no N) leave at their defaults."""


@dataclass
class TrainConfig:
    """Everything a run needs; the defaults are the paper's (docs/training.md).

    A running task (``memory_envs.tasks.is_running_task``: ``running_parity``, ``running_modK``,
    ``mod_arithmetic``, ``word_<group>``) trains state tracking instead (trained by
    :class:`baselines.trainer.RunningTaskTrainer`): no N, labels at every labelled step on lengths
    ``length_range`` (default 3-40), then the test at ``test_lengths`` and ``far_length`` on ``test_sequences``
    fresh sequences each. Its ``curriculum`` is ``"none"`` (the default for those tasks) or ``"length"``
    (:class:`memory_envs.curriculum.LengthCurriculum`).
    """

    task: str = "parity"
    curriculum: str | None = None
    """None: the task's default, ``"multi"`` (``"none"`` for running parity)."""
    start_n: int = 2
    target_n: int | None = None
    window: int = 5
    drop: int = 1
    threshold: float = 0.98
    core: str = "leaky"
    hidden_size: int = 500
    tau_init: tuple[float, float] = (1.0, 2.0)
    train_tau: bool = True
    tau_param: str = "clamp"
    core_options: dict[str, Any] = field(default_factory=dict)
    p: float | str | None = None
    optimizer: str = "auto"
    lr: float | None = None
    momentum: float = 0.1
    nesterov: bool = True
    clip_grad: float = 2.0
    batch_size: int = 256
    eval_every: int = 600
    eval_batches: int = 50
    max_steps: int = 600_000
    max_seconds: float | None = None
    seed: int = 0
    device: str = "auto"
    modulus: int | None = None
    """A running count's k: None -> running parity's 2, ``running_modK``'s K (set when the config is made); None for
    the other tasks."""
    length_range: tuple[int, int] | None = None
    """A running task's training lengths, half-open (None: the protocol's (3, 41), lengths 3 to 40)."""
    test_lengths: tuple[int, ...] = tasks.RUNNING_TEST_LENGTHS
    far_length: int | None = tasks.RUNNING_FAR_LENGTH
    test_sequences: int = tasks.RUNNING_TEST_SEQUENCES
    """A running task's fresh test sequences per test length (in batches of ``batch_size``)."""

    def __post_init__(self) -> None:
        if self.curriculum is None:
            self.curriculum = "none" if self.running else "multi"
        if self.modulus is None and tasks.is_count_task(self.task):
            with contextlib.suppress(ValueError):  # a bad task name is validate's to refuse
                self.modulus = tasks.count_modulus(self.task)

    @property
    def running(self) -> bool:
        """Whether this run trains a running task (state tracking, :func:`memory_envs.tasks.is_running_task`)
        rather than a windowed task."""
        return tasks.is_running_task(self.task)

    @property
    def input_size(self) -> int:
        """The network's input width: a token task's vocabulary (one-hot tokens), else 1 (the bit)."""
        return tasks.token_task(self.task).vocab if tasks.is_token_task(self.task) else 1

    @property
    def classes(self) -> int:
        """The readout's classes: a token task's, a running count's modulus, else 2."""
        if tasks.is_token_task(self.task):
            return tasks.token_task(self.task).classes
        return self.modulus if self.running and self.modulus is not None else 2

    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first field that is not allowed."""
        tasks.check_task_name(self.task)
        if self.running:
            self.check_running()
        else:
            tasks.check_task(self.task)
            try:
                Curriculum(self.curriculum, self.start_n, self.target_n, self.threshold, self.window, self.drop)
            except ValueError as error:  # Curriculum names its own arguments: say which config field
                raise ValueError(str(error).replace("n_max ", "target_n ").replace("start ", "start_n ")) from None
            tasks.check_ns(self.task, self.start_n, argument="start_n")
            refuse_changed(self, RUNNING_FIELDS, f"only apply to the running tasks ({tasks.RUNNING_TASK_RULE})")
        if is_import_path(self.core):
            import_core_class(self.core)  # an external core: it must import and fit the protocol
        elif self.core not in CORES:
            raise ValueError(f"core must be one of {CORES} or an import path 'package.module:ClassName', "
                             f"got {self.core!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("hidden_size", "batch_size", "eval_every", "eval_batches", "max_steps"):
            tasks.check_positive_int(getattr(self, name), name)
        if self.lr is not None:
            check_finite(self.lr, "lr", 0.0, strict=True)
        check_finite(self.clip_grad, "clip_grad", 0.0, strict=True)
        self.check_tau_options()
        check_finite(self.momentum, "momentum", 0.0, strict=False)
        if self.max_seconds is not None:
            check_finite(self.max_seconds, "max_seconds", 0.0, strict=True)
        check_seed(self.seed)
        if tasks.is_token_task(self.task):
            if self.p is not None:
                raise ValueError(f"p must be left out for task {self.task!r}, which draws uniform tokens (p is the "
                                 f"bit probability of the bit tasks), got {self.p!r}")
        else:
            tasks.check_p(self.task, self.p)
        resolve_device(self.device)
        if not isinstance(self.core_options, dict):
            raise ValueError(f"core_options must be a dict, got {type(self.core_options).__name__}")
        self.check_memory()
        self.check_duration()
        try:  # every core option and the tau settings (a throwaway generator: no global RNG is drawn from)
            build_model(self, [tasks.RUNNING_N] if self.running else [self.start_n], generator=torch.Generator())
        except (TypeError, ValueError) as error:
            raise ValueError(f"core {self.core!r} rejects its options (tau_init {list(self.tau_init)}, train_tau "
                             f"{self.train_tau}, tau_param {self.tau_param!r}, core_options "
                             f"{self.core_options}): {error}") from None
        return self

    def check_running(self) -> None:
        """A running task's fields: its curriculum, modulus (a count's only) and lengths; the N curriculum's left at
        defaults."""
        LengthCurriculum(self.curriculum, self.length_range, self.threshold)
        refuse_changed(self, N_CURRICULUM_FIELDS, f"belong to the curriculum over N; task {self.task!r} "
                                                  "has no N (its curriculum is 'none' or 'length')")
        if tasks.is_count_task(self.task):
            tasks.count_modulus(self.task, self.modulus)
        elif self.modulus is not None:
            raise ValueError(f"modulus must be left out for task {self.task!r} (it sets the count of "
                             f"{tasks.COUNT_TASK_RULE}), got {self.modulus!r}")
        tasks.check_running_lengths(self.length_range)
        tasks.check_test_lengths(self.test_lengths)
        if self.far_length is not None:
            tasks.check_positive_int(self.far_length, "far_length")
        tasks.check_positive_int(self.test_sequences, "test_sequences")

    def optimizer_settings(self) -> tuple[str, float]:
        """The optimizer and learning rate a run uses: ``"auto"`` takes the kind's (KIND_OPTIMIZERS), and an
        unset ``lr`` the kind's for that optimizer, else the paper's for it (PAPER_LR)."""
        kind_optimizer, kind_lr = KIND_OPTIMIZERS.get(self.core, ("adam", PAPER_LR["adam"]))
        optimizer = kind_optimizer if self.optimizer == "auto" else self.optimizer
        if self.lr is not None:
            return optimizer, float(self.lr)
        return optimizer, kind_lr if optimizer == kind_optimizer else PAPER_LR[optimizer]

    def check_tau_options(self) -> None:
        """The tau settings are options of the cores with a per-neuron tau only: refuse them elsewhere."""
        refuse_tau_options(self, ("tau_init", "train_tau", "tau_param"))

    def check_memory(self) -> None:
        """Refuse a batch whose training step would not fit in memory (at ``target_n`` if set; a running task:
        at its longest training or test length, an overestimate for the tests, which keep no gradient)."""
        vocab = self.input_size if tasks.is_token_task(self.task) else None
        if self.running:
            heads = 1
            length = max(tasks.check_running_lengths(self.length_range)[1] - 1, *self.test_lengths, self.far_length or 0)
            where = f"{self.task} (sequences up to {length} steps)"
        else:
            n = self.target_n or self.start_n
            length = tasks.default_length_range(n)[1] - 1
            heads = {"single": 1, "sliding": min(self.window, n)}.get(self.curriculum, n - self.start_n + 1)
            where = f"N={n} (target_n; sequences up to {length} steps)"
        activations = ACTIVATION_COPIES * 4 * length * self.batch_size * self.hidden_size
        total = (activations + tasks.batch_bytes(self.batch_size, length, heads, vocab=vocab)
                 + 4 * self.hidden_size ** 2 * 3)
        sizes.check_fits(total, f"batch_size={self.batch_size} x hidden_size={self.hidden_size} at {where}")

    def check_duration(self) -> None:
        """Refuse an evaluation, or a running task's length test, that would take longer than a phase may
        (:func:`memory_envs.sizes.check_duration`; estimated at the shortest sequences of the first evaluation)."""
        device = resolve_device(self.device).type
        flops_per_step = 2 * self.hidden_size ** 2
        length = self.shortest_length()
        steps = self.eval_batches * length
        sizes.check_duration(sizes.phase_seconds(self.eval_batches, steps, steps * self.batch_size * flops_per_step,
                                                 device),
                             f"eval_batches={self.eval_batches} (one evaluation of {self.eval_batches} batches of "
                             f"{self.batch_size} sequences)")
        if not self.running:
            return
        lengths = (*self.test_lengths, *(() if self.far_length is None else (self.far_length,)))
        batches = -(-self.test_sequences // self.batch_size)
        seconds = sizes.phase_seconds(batches * len(lengths), batches * sum(lengths),
                                      self.test_sequences * sum(lengths) * flops_per_step, device)
        sizes.check_duration(seconds, f"test_sequences={self.test_sequences} at {len(lengths)} test lengths up to "
                                      f"{max(lengths)} steps (the length test)")

    def shortest_length(self) -> int:
        """The shortest sequences of the first evaluation: the length the time estimates count (below the real
        time)."""
        if self.running:
            return tasks.check_running_lengths(self.length_range)[0]
        return tasks.default_length_range(self.start_n)[0]

    def run_seconds(self) -> float:
        """A lower estimate of the whole run's seconds (:func:`memory_envs.sizes.phase_seconds`): ``max_steps``
        training steps (forward and backward: 3 times a forward's flops) and their evaluations, at
        :meth:`shortest_length`; at most ``max_seconds``, which stops the run."""
        length = self.shortest_length()
        evaluations = self.max_steps // self.eval_every * self.eval_batches
        calls = self.max_steps + evaluations
        flops = (3 * self.max_steps + evaluations) * length * self.batch_size * 2 * self.hidden_size ** 2
        seconds = sizes.phase_seconds(calls, calls * length, flops, resolve_device(self.device).type)
        return seconds if self.max_seconds is None else min(seconds, float(self.max_seconds))

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values; :data:`RUNNING_FIELDS` for the running tasks only."""
        data = dataclasses.asdict(self)
        for name in ("tau_init", "length_range", "test_lengths"):
            data[name] = None if data[name] is None else list(data[name])
        if not self.running:
            for name in RUNNING_FIELDS:
                del data[name]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}: written by another version of memory-envs (use that "
                             "version, or start the run again)")
        data = dict(data)
        for name in ("tau_init", "length_range", "test_lengths"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; a device that is not available raises ValueError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} is not available on this machine (no CUDA); use 'cpu' or 'auto'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} is not available: this machine has {torch.cuda.device_count()} "
                         f"CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}")
    return dev


def build_model(config: TrainConfig, heads: list[int], generator: torch.Generator | None
                ) -> agents.MultiHeadModel:
    """The core (a tau core with the tau options; the others, external ones included, with ``core_options``
    only) plus heads."""
    if is_import_path(config.core) or config.core not in agents.cores.TAU_KINDS:
        options = dict(config.core_options)
    else:
        options = {"tau_init": config.tau_init, "train_tau": config.train_tau, "tau_param": config.tau_param,
                   **config.core_options}
    core = agents.make_core(config.core, config.input_size, config.hidden_size, generator=generator, **options)
    return agents.MultiHeadModel(core, heads, generator=generator, classes=config.classes)


SIGNED = "+signed"


def core_variant(core: str) -> tuple[str, dict[str, Any]]:
    """A benchmark core -> (kind or import path, core_options): ``KIND+signed`` is the kind with
    ``eigenvalues="signed"``; ValueError for a suffix on a kind without that option."""
    if not core.endswith(SIGNED):
        return core, {}
    kind = core[: -len(SIGNED)]
    if kind not in agents.cores.EIGENVALUE_KINDS:
        raise ValueError(f"core {core!r}: '+signed' applies to the kinds with an eigenvalues option "
                         f"{list(agents.cores.EIGENVALUE_KINDS)}")
    return kind, {"eigenvalues": "signed"}


def core_label(config: dict[str, Any]) -> str:
    """The benchmark core a run folder's config.json was trained as (inverse of ``core_variant``)."""
    signed = (config.get("core_options") or {}).get("eigenvalues") == "signed"
    return config.get("core", "?") + (SIGNED if signed else "")


def depth_label(core: str, layers: int) -> str:
    """A benchmark core and its depth as the figures name them: ``"mamba"`` at 1 layer, ``"mamba, 2 layers"``."""
    return core if layers == 1 else f"{core}, {layers} layers"


__all__ = ["ACTIVATION_COPIES", "CORES", "SIGNED", "core_label", "core_variant", "depth_label",
           "KIND_OPTIMIZERS", "N_CURRICULUM_FIELDS", "OPTIMIZERS", "PAPER_LR",
           "RESUME_MAY_CHANGE", "RUNNING_FIELDS", "STOP_REASONS", "TrainConfig", "build_model",
           "check_finite", "check_seed", "resolve_device"]
