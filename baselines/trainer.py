"""The supervised trainer of the paper: curriculum over N, checkpoints at every advance, resume; and the
trainer of the running tasks (:class:`RunningTaskTrainer`, same run folder: running parity, the mod-K counts,
the group word problems and modular arithmetic), picked by :func:`make_trainer`.

One run lives in one folder::

    config.json      the TrainConfig
    metrics.jsonl    one line per evaluation (step, time, ns, per-head accuracy, loss, tau stats)
    checkpoints/nNNN the model (agents checkpoint) when the curriculum solved N
    last/            model + trainer state at step 0 and after the latest evaluation (what --resume continues):
                     model.safetensors + model.json, trainer.safetensors + trainer.json (optimizer,
                     curriculum, RNG states; no pickle); last.old/ keeps the one before as a fallback
    summary.json     max_n, steps, seconds, stopped_because, steps_to_n, mean tau per solved N
                     (written at every stop; a resume that trains on removes it first; a resume of a
                     run that is finished, its target solved or its budget used and not raised, changes
                     nothing and returns this summary)

The folder's shared parts (config check on resume, the ``last/`` swap, metrics truncation) are
:mod:`baselines.run_folder`'s, used by the RL baseline too.

A non-finite loss or parameter stops the run (``stopped_because: "non_finite"``, with a message);
``last/`` then keeps the last finite state. A SIGINT or SIGTERM under :func:`baselines.interrupt.stop_on_signals`
stops it at the next step (``"interrupted"``), with its state saved at that step: ``--resume`` goes on
as if it had not stopped.

The loop is written straight through (CleanRL style): draw a batch, summed cross-entropy over
the active heads, clipped SGD step; every ``eval_every`` steps evaluate, update the curriculum,
write metrics and the resume state.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

import agents
from agents.checkpoint import make_folder
from agents.protocol import import_core_class, is_import_path
from baselines import interrupt
from baselines.resume_state import read_state, write_state
from baselines.run_folder import (
    RunFolderError, RunLock, append_metrics, atomic_write_text, check_metrics, check_open_mode, check_restart,
    create_run_folder, open_for_resume, read_json, restore_last, save_last, write_config, write_json,
)
from baselines.state_tracking import NOT_TESTED, length_test
from baselines.train_config import (
    CORES, OPTIMIZERS, RESUME_MAY_CHANGE, STOP_REASONS, TrainConfig, build_model, check_seed, resolve_device,
)
from baselines.threads import torch_threads
from memory_envs import Curriculum, make_batch, tasks
from memory_envs.curriculum import LengthCurriculum


def build_optimizer(config: TrainConfig, model: agents.MultiHeadModel) -> torch.optim.Optimizer:
    """One parameter group for the core, then one per head in the order the heads were added."""
    groups = [{"params": list(model.core.parameters())}]
    groups += [{"params": list(model.head(n).parameters())} for n in model.ns]
    optimizer, lr = config.optimizer_settings()
    if optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum, nesterov=config.nesterov)
    return torch.optim.Adam(groups, lr=lr)


def tau_stats(core: torch.nn.Module) -> dict[str, float | None]:
    """Mean, min and max of the core's per-neuron tau; None for a core without one."""
    tau = getattr(core, "tau", None)
    if not isinstance(tau, torch.Tensor):
        return {"tau_mean": None, "tau_min": None, "tau_max": None}
    tau = tau.detach()
    return {"tau_mean": float(tau.mean()), "tau_min": float(tau.min()), "tau_max": float(tau.max())}


class Trainer:
    """Train one network on one task with one curriculum, writing a run folder (see module doc).

    Every random draw comes from the run's CPU generators (numpy ones for the data, a torch.Generator
    for weights, new heads and initial states) and is then moved to the device, so one seed gives the
    same initial network on CPU and GPU.

    Everything is checked and built before the folder is touched; the folder's lock is held from
    here until :meth:`run` returns (or :meth:`close`), so a second process cannot write it meanwhile.
    """

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False,
                 overwrite: bool = False) -> None:
        check_open_mode(resume, overwrite)
        self.config = config.validate()
        self.run_dir = Path(run_dir)
        self.device = resolve_device(config.device)
        self.core_class = import_core_class(config.core) if is_import_path(config.core) else None
        """An external core's class, named by the caller in the config: what resume rebuilds it from."""
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.data_rng = np.random.default_rng([config.seed, 0])
        self.eval_rng = np.random.default_rng([config.seed, 1])
        self.curriculum = self.make_curriculum()
        self.model = build_model(config, list(self.curriculum.ns), self.generator).to(self.device)
        self.optimizer = build_optimizer(config, self.model)
        self.step = 0
        self.seconds = 0.0
        self.steps_to_n: dict[int, int] = {}
        self.tau_at_n: dict[int, float] = {}
        self.metrics_lines = 0
        self._losses: list[float] = []
        """The losses of the steps since the last evaluation: its metrics line reports their mean."""
        self.eval_pending = False
        """A stop request abandoned the evaluation due at this step: the run evaluates before its next step
        (:func:`stoppable_evaluation`)."""
        self.resumed_from: Path | None = None
        """The saved state this run continues (``last/`` or, if that was damaged, ``last.old/``)."""
        self.resume_note: str | None = None
        """Set when a resume found no saved state and starts the run again, or found the run finished: the
        line saying so."""
        self.finished: dict[str, Any] | None = None
        """The summary of a finished run that a resume leaves as it is (see :func:`finished_summary`)."""
        self._lock: RunLock | None = None
        self._prepare_folder(resume, overwrite)

    def make_curriculum(self) -> Curriculum:
        """The run's schedule over N (the running tasks' trainer returns its schedule over lengths)."""
        c = self.config
        if c.running:
            raise ValueError(f"task {c.task!r} trains with baselines.trainer.RunningTaskTrainer "
                             "(make_trainer picks the trainer of a config's task)")
        return Curriculum(c.curriculum, c.start_n, c.target_n, c.threshold, c.window, c.drop)

    # ----- run folder -------------------------------------------------------------------------
    def _prepare_folder(self, resume: bool, overwrite: bool) -> None:
        config = self.config.to_json()
        if not resume:
            self._lock = create_run_folder(self.run_dir, config, overwrite)
            try:
                make_folder(self.run_dir / "checkpoints")
            except BaseException:
                self.close()
                raise
            return
        self._lock = open_for_resume(self.run_dir, config, RESUME_MAY_CHANGE)
        self.finished = finished_summary(self.run_dir, self.config)
        if self.finished is not None:  # nothing to train: the folder stays as it is
            self.resume_note = finished_note(self.run_dir, self.finished)
            return
        try:
            restored = restore_last(self.run_dir, self._restore)
            if restored is None:  # killed before the first saved state: start again, if that loses nothing
                self.resume_note = check_restart(self.run_dir)
                check_metrics(self.run_dir, 0)
            else:
                self.resumed_from, apply = restored
                check_metrics(self.run_dir, apply["metrics_lines"], self.resumed_from)
                apply["apply"]()
            write_config(self.run_dir, config)
            make_folder(self.run_dir / "checkpoints")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the run folder's lock (:meth:`run` does so when it returns)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "seconds": self.seconds,
            "optimizer": self.optimizer.state_dict(),
            "curriculum": self.curriculum.state_dict(),
            "data_rng": self.data_rng.bit_generator.state,
            "eval_rng": self.eval_rng.bit_generator.state,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "steps_to_n": self.steps_to_n,
            "tau_at_n": self.tau_at_n,
            "metrics_lines": self.metrics_lines,
            "losses": self._losses,
            "eval_pending": self.eval_pending,
        }

    def _save_last(self) -> None:
        """Model and trainer state as ``last/``, what resume continues (safetensors + JSON, no pickle)."""

        def write(folder: Path) -> None:
            agents.save(self.model, folder)
            write_state(folder, "trainer", self._state())

        save_last(self.run_dir, write)

    def _restore(self, folder: Path) -> dict[str, Any]:
        """Read and check the state in ``folder`` without changing the trainer; returns its metrics line
        count and a function that applies it. A damaged file raises a ValueError naming it."""
        try:
            model = agents.load(folder, core_class=self.core_class)
        except FileNotFoundError as error:
            raise RunFolderError(str(error)) from None
        state = read_state(folder, "trainer")
        where = folder / "trainer.json"
        try:
            model = model.to(self.device)
            optimizer = build_optimizer(self.config, model)
            optimizer.load_state_dict(state["optimizer"])
            curriculum = type(self.curriculum).from_state_dict(state["curriculum"])
            data_rng, eval_rng = np.random.default_rng(), np.random.default_rng()
            data_rng.bit_generator.state = state["data_rng"]
            eval_rng.bit_generator.state = state["eval_rng"]
            generator = torch.Generator()
            generator.set_state(state["generator"])
            torch_rng = state["torch_rng"]
            torch.Generator().set_state(torch_rng)  # the same format: fails here if damaged
            step, seconds, lines = state["step"], state["seconds"], state["metrics_lines"]
            steps_to_n = {int(k): int(v) for k, v in state["steps_to_n"].items()}
            tau_at_n = {int(k): v for k, v in state["tau_at_n"].items()}
            losses = [float(v) for v in state.get("losses", [])]  # states saved before interrupts had none
            eval_pending = state.get("eval_pending", False)  # nor those saved before stoppable evaluations
            if not isinstance(eval_pending, bool):
                raise ValueError(f"eval_pending must be true or false, got {eval_pending!r}")
            if not (isinstance(step, int) and isinstance(lines, int) and step >= 0 and lines >= 0
                    and isinstance(seconds, (int, float))):
                raise ValueError(f"step {step!r}, metrics_lines {lines!r} and seconds {seconds!r} must be counts")
            if set(model.ns) != set(curriculum.ns) and self.config.curriculum != "single":
                raise ValueError(f"the model's heads {model.ns} are not the curriculum's Ns {curriculum.ns}")
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            raise RunFolderError(f"{where}: the saved trainer state is damaged ({type(error).__name__}: {error})"
                                 ) from None

        def apply() -> None:
            self.model, self.optimizer, self.curriculum = model, optimizer, curriculum
            self.data_rng, self.eval_rng, self.generator = data_rng, eval_rng, generator
            torch.set_rng_state(torch_rng)
            self.step, self.seconds, self.metrics_lines = step, float(seconds), lines
            self.steps_to_n, self.tau_at_n, self._losses = steps_to_n, tau_at_n, losses
            self.eval_pending = eval_pending

        return {"metrics_lines": lines, "apply": apply}

    # ----- training (the population trainer, baselines.population, runs these pieces for G members) -----
    def batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh batch of the active Ns from ``rng`` (the data or the eval stream): inputs, labels."""
        batch = make_batch(self.config.task, self.curriculum.ns, self.config.batch_size, rng=rng, p=self.config.p)
        tensors = batch.to_torch(self.device)
        return tensors["inputs"], tensors["labels"]

    def initial_state(self, batch_size: int) -> agents.cores.State:
        """The core's initial state for one batch, drawn from the run's (CPU) generator and moved to the model."""
        return self.model.core.initial_state(batch_size, generator=self.generator)

    def _logits(self, inputs: torch.Tensor) -> dict[int, torch.Tensor]:
        return self.model(inputs, ns=self.curriculum.ns, state=self.initial_state(inputs.shape[1]))

    def loss(self, logits: dict[int, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """The paper's loss: the sum over active heads of the cross-entropy."""
        return sum(F.cross_entropy(logits[n], labels[:, k]) for k, n in enumerate(self.curriculum.ns))

    def apply_gradients(self) -> None:
        """Clip this network's gradient norm at ``clip_grad``, take the optimizer step, count it."""
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad)
        self.optimizer.step()
        self.step += 1

    def train_step(self) -> float:
        """One step; returns the loss. A non-finite loss is returned without a step (nothing changes)."""
        inputs, labels = self.batch(self.data_rng)
        loss = self.loss(self._logits(inputs), labels)
        value = float(loss.detach())
        if not math.isfinite(value):
            return value
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.apply_gradients()
        return value

    def non_finite_parameter(self) -> str | None:
        """The name of a parameter holding NaN or inf, or None if all are finite."""
        for name, param in self.model.named_parameters():
            if not bool(torch.isfinite(param).all()):
                return name
        return None

    def correct(self, logits: dict[int, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Correct answers per active N in one batch, a tensor [K]."""
        return torch.stack([(logits[n].argmax(dim=1) == labels[:, k]).sum() for k, n in enumerate(self.curriculum.ns)])

    def accuracy(self, correct: torch.Tensor) -> dict[int, float]:
        """Accuracy per active N from the correct answers summed over ``eval_batches`` batches."""
        total = self.config.eval_batches * self.config.batch_size
        return {n: float(c) / total for n, c in zip(self.curriculum.ns, correct.tolist())}

    @torch.no_grad()
    def evaluate(self) -> dict[int, float]:
        """Accuracy per active N over ``eval_batches`` fresh batches (a stop request abandons it between two
        batches: :func:`baselines.interrupt.check`)."""
        correct = torch.zeros(len(self.curriculum.ns), dtype=torch.long, device=self.device)
        for _ in range(self.config.eval_batches):
            interrupt.check()
            inputs, labels = self.batch(self.eval_rng)
            correct += self.correct(self._logits(inputs), labels)
        return self.accuracy(correct)

    def _advance(self, solved_before: int | None) -> None:
        """After the curriculum moved on: checkpoint the solved N, then give the new N its readout."""
        solved = self.curriculum.solved
        if solved is not None and solved != solved_before:
            self.steps_to_n[solved] = self.step
            self.tau_at_n[solved] = tau_stats(self.model.core)["tau_mean"]
            agents.save(self.model, self.run_dir / "checkpoints" / f"n{solved:03d}")
        new_ns = [n for n in self.curriculum.ns if n not in self.model.ns]
        for n in new_ns:
            if self.config.curriculum == "single":  # one readout, reused: move it to the new N
                (old,) = self.model.ns
                self.model.heads[str(n)] = self.model.heads.pop(str(old))
            else:
                head = self.model.add_head(n, generator=self.generator)  # CPU draw, on the model's device
                self.optimizer.add_param_group({"params": list(head.parameters())})

    def _log_metrics(self, accuracy: dict[int, float], loss: float, ns: list[int]) -> dict[str, Any]:
        line = {
            "step": self.step,
            "time": round(self.seconds, 3),
            "ns": ns,
            "accuracy": {str(n): accuracy[n] for n in ns},
            "loss": loss,
            **tau_stats(self.model.core),
            **self.metrics_fields(),
        }
        append_metrics(self.run_dir, line)
        self.metrics_lines += 1
        return line

    def run(self, on_eval: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train until the target N is solved, a budget runs out or the numbers turn non-finite; returns
        (and writes) the summary and releases the folder's lock."""
        try:
            return self._run(on_eval)
        finally:
            self.close()

    def start_clock(self) -> None:
        """Count ``seconds`` on from now (a resumed run continues its saved time). A run that starts from step 0
        first saves that state, so its first metrics line is never without a saved state to resume from."""
        if (self.resumed_from is not None or self.step) and self.finished is None:
            (self.run_dir / "summary.json").unlink(missing_ok=True)  # stale until this run stops
        if self.resumed_from is None and self.step == 0 and self.finished is None:
            self._save_last()
        self._started = time.perf_counter() - self.seconds
        self._non_finite: str | None = None

    def stop_reason(self) -> str | None:
        """Why the run stops now (one of STOP_REASONS), or None to go on."""
        if self.finished is not None:
            return self.finished["stopped_because"]
        if self._non_finite is not None:
            return "non_finite"
        if interrupt.requested():
            return "interrupted"
        if self.eval_pending:  # the evaluation a stop abandoned comes first, whatever the budgets say
            return None
        if self.curriculum.finished:
            return "target_reached"
        if self.step >= self.config.max_steps:
            return "max_steps"
        if self.config.max_seconds is not None and self.seconds >= self.config.max_seconds:
            return "max_seconds"
        return None

    def record_loss(self, loss: float) -> bool:
        """After a training step: update ``seconds`` and keep its loss for the next metrics line; a
        non-finite loss (no step was taken) stops the run instead. Returns whether the step counts."""
        self.seconds = time.perf_counter() - self._started
        if not math.isfinite(loss):
            self._non_finite = (f"the training loss became {loss} at step {self.step + 1}; the run stopped (last/ "
                                f"keeps the state of the last finite evaluation). Lower lr ({self.config.optimizer_settings()[1]:g}) "
                                "or clip_grad.")
            return False
        self._losses.append(loss)
        return True

    def eval_due(self) -> bool:
        """True when the step just taken ends an ``eval_every`` block."""
        return self.step % self.config.eval_every == 0

    def finish_eval(self, accuracy: dict[int, float], on_eval: Callable[[dict[str, Any]], None] | None = None
                    ) -> dict[str, Any] | None:
        """After an evaluation: update the curriculum, checkpoint an advance, write the metrics line and the
        resume state, call ``on_eval(line)``; returns the line. A non-finite parameter stops the run
        instead (nothing written; returns None)."""
        bad = self.non_finite_parameter()
        if bad is not None:
            self._non_finite = (f"parameter {bad} became non-finite by step {self.step}; the run stopped (last/ "
                                f"keeps the state of the last finite evaluation). Lower lr ({self.config.optimizer_settings()[1]:g}) "
                                "or clip_grad.")
            return None
        ns = list(self.curriculum.ns)
        solved_before = self.curriculum.solved
        if self.curriculum.update(accuracy) or self.curriculum.solved != solved_before:
            self._advance(solved_before)
        line = self._log_metrics(accuracy, float(np.mean(self._losses)), ns)
        self._losses = []
        self.seconds = time.perf_counter() - self._started
        self._save_last()
        if on_eval is not None:
            on_eval(line)
        return line

    def _run(self, on_eval: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        self.start_clock()
        while (reason := self.stop_reason()) is None:
            if self.eval_pending or (self.record_loss(self.train_step()) and self.eval_due()):
                accuracy = stoppable_evaluation([self], lambda: [self.evaluate()])
                if accuracy is not None:
                    self.finish_eval(accuracy[0], on_eval)
        return self.write_summary(reason)

    def write_summary(self, stopped_because: str) -> dict[str, Any]:
        """Write (and return) summary.json: the folder is final. An interrupted run first saves its state at
        this step, so a resume loses no step; so does a run whose closing phase (a running task's length test) a
        stop request abandons, which then says ``"interrupted"``. A finished run that a resume left as it is
        returns its summary unchanged."""
        if self.finished is not None:
            return self.finished
        try:
            fields = self.summary_fields(stopped_because)
        except interrupt.Interrupted:
            stopped_because, fields = "interrupted", self.summary_fields("interrupted")
        if stopped_because == "interrupted":
            self._save_last()
        message = self._non_finite if stopped_because == "non_finite" else None
        summary = {
            "max_n": self.curriculum.solved,
            "steps": self.step,
            "seconds": round(self.seconds, 3),
            "stopped_because": stopped_because,
            "active_ns": list(self.curriculum.ns),
            "steps_to_n": {str(n): s for n, s in sorted(self.steps_to_n.items())},
            "tau_mean_at_n": {str(n): t for n, t in sorted(self.tau_at_n.items())},
            "task": self.config.task,
            "curriculum": self.config.curriculum,
            "core": self.config.core,
            "hidden_size": self.config.hidden_size,
        }
        if message is not None:
            summary["message"] = message
        summary.update(fields)
        write_json(self.run_dir / "summary.json", summary)
        return summary

    def metrics_fields(self) -> dict[str, Any]:
        """What a task adds to each metrics line (nothing for the windowed tasks)."""
        return {}

    def summary_fields(self, stopped_because: str) -> dict[str, Any]:
        """What a task adds to (or replaces in) summary.json when the run stops (nothing for the windowed tasks)."""
        return {}


UNLABELLED = -100
"""The label of a step without one in :meth:`RunningTaskTrainer.batch` (``F.cross_entropy``'s ``ignore_index``)."""


def last_labelled(labels: torch.Tensor) -> int:
    """The last step of ``labels`` [T, B] that has a label (every sequence of a batch has the same mask)."""
    return int(torch.nonzero(labels[:, 0] != UNLABELLED).max())


class RunningTaskTrainer(Trainer):
    """The trainer of the running tasks (:func:`memory_envs.tasks.is_running_task`; :mod:`baselines.state_tracking`,
    docs/state_tracking.md): the Trainer with its batches (labels at every labelled step), loss (the mean
    cross-entropy over the labelled steps), evaluation (accuracy at the last labelled step, at the training lengths
    in force) and schedule (:class:`memory_envs.curriculum.LengthCurriculum`). Its run folder is the Trainer's
    plus ``checkpoints/final`` (the network the test scored) and, in ``summary.json``, ``length_test``
    (:func:`~baselines.state_tracking.length_test`) and ``longest_length_passed``.

    Populations (:mod:`baselines.population`) read each member's last step only, so the running tasks, which
    are scored at every step, train one network at a time."""

    def make_curriculum(self) -> LengthCurriculum:
        c = self.config
        return LengthCurriculum(c.curriculum, c.length_range, c.threshold)

    def batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh batch at the training lengths in force: inputs [T, B, F] and the labels of every step [T, B]
        (:data:`UNLABELLED` at the steps without one)."""
        batch = make_batch(self.config.task, None, self.config.batch_size, rng=rng, p=self.config.p,
                           length_range=self.curriculum.lengths, streaming=True, modulus=self.config.modulus)
        tensors = batch.to_torch(self.device)
        return tensors["inputs"], tensors["streaming_labels"][:, :, 0].masked_fill(~tensors["streaming_mask"],
                                                                                   UNLABELLED)

    def _logits(self, inputs: torch.Tensor) -> dict[int, torch.Tensor]:
        return self.model(inputs, ns=self.curriculum.ns, every_step=True, state=self.initial_state(inputs.shape[1]))

    def loss(self, logits: dict[int, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """The mean cross-entropy over the labelled steps of every sequence."""
        return F.cross_entropy(logits[tasks.RUNNING_N].flatten(0, 1), labels.flatten(), ignore_index=UNLABELLED)

    def correct(self, logits: dict[int, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Correct answers at the last labelled step (the label of the whole sequence), a tensor [1]."""
        last = last_labelled(labels)
        return (logits[tasks.RUNNING_N][last].argmax(dim=-1) == labels[last]).sum().reshape(1)

    def _advance(self, solved_before: int | None) -> None:
        """The length curriculum moved on: nothing to add (one head), nothing to checkpoint (no N solved)."""

    def evaluate(self) -> dict[int, float]:
        """Accuracy at the last labelled step at the training lengths in force (which the metrics line records)."""
        self._evaluated_lengths = self.curriculum.lengths
        return super().evaluate()

    def metrics_fields(self) -> dict[str, Any]:
        return {"lengths": list(self._evaluated_lengths)}

    def summary_fields(self, stopped_because: str) -> dict[str, Any]:
        """No N (``max_n`` None); the longest length the length curriculum passed; and, unless the run was
        interrupted or turned non-finite, the network as ``checkpoints/final`` and its :func:`length_test`."""
        fields: dict[str, Any] = {"max_n": None, "longest_length_passed": self.curriculum.solved,
                                  "length_test": None}
        if stopped_because not in NOT_TESTED:
            agents.save(self.model, self.run_dir / "checkpoints" / "final")
            fields["length_test"] = length_test(self.model, self.config, self.device, self.config.seed)
        return fields


def stoppable_evaluation(members: Sequence[Trainer], evaluate: Callable[[], list[dict[int, float]]]
                         ) -> list[dict[int, float]] | None:
    """``evaluate()`` (the members' accuracies), or None if a stop request abandoned it: then each member's eval
    stream and generator are put back as they were before it and its evaluation is marked pending, so the state
    saved at the stop makes a resume evaluate first, as if the run had not stopped."""
    before = [(m.eval_rng.bit_generator.state, m.generator.get_state()) for m in members]
    try:
        accuracies = evaluate()
    except interrupt.Interrupted:
        for member, (eval_rng, generator) in zip(members, before):
            member.eval_rng.bit_generator.state = eval_rng
            member.generator.set_state(generator)
            member.eval_pending = True
        return None
    for member in members:
        member.eval_pending = False
    return accuracies


def make_trainer(config: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False
                 ) -> Trainer:
    """The trainer of ``config``'s task: :class:`Trainer`, or for a running task :class:`RunningTaskTrainer`."""
    if config.running:
        return RunningTaskTrainer(config, run_dir, resume=resume, overwrite=overwrite)
    return Trainer(config, run_dir, resume=resume, overwrite=overwrite)


def finished_summary(run_dir: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The summary of the run in ``run_dir`` if it is finished under ``config``: it stopped on reaching its
    target, or on a step or time budget that ``config`` does not raise. None if it is to train on (also
    after an interrupt, a non-finite stop, or with a summary.json that cannot be read)."""
    try:
        summary = read_json(run_dir / "summary.json")
    except RunFolderError:
        return None
    reason = summary.get("stopped_because")
    steps, seconds = summary.get("steps"), summary.get("seconds")
    if reason == "target_reached":
        return summary
    if reason in ("max_steps", "max_seconds") and isinstance(steps, int) and isinstance(seconds, (int, float)):
        over_time = config.max_seconds is not None and seconds >= config.max_seconds
        return summary if steps >= config.max_steps or over_time else None
    return None


def finished_note(run_dir: Path, summary: dict[str, Any]) -> str:
    """The line that says a resume found the run finished and changed nothing."""
    why = {"target_reached": f"it solved its target N={summary.get('max_n')}",
           "max_steps": f"it used its step budget ({summary['steps']} steps)",
           "max_seconds": f"it used its time budget ({summary['seconds']:.0f} s)"}[summary["stopped_because"]]
    more = "" if summary["stopped_because"] == "target_reached" else ": a larger max_steps / max_seconds continues it"
    return f"{run_dir} is finished, {why}; nothing was changed{more}"


def train(config: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
          on_eval: Callable[[dict[str, Any]], None] | None = None, threads: int | None = None) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` and return the summary (see :class:`Trainer`; a running task:
    :class:`RunningTaskTrainer`). ``threads``: torch CPU threads during the run (default: as
    ``memory-envs train``, the cores not busy with other jobs, :mod:`baselines.threads`); the caller's
    setting is restored after."""
    with torch_threads(threads):
        return make_trainer(config, run_dir, resume=resume, overwrite=overwrite).run(on_eval)


__all__ = ["CORES", "OPTIMIZERS", "RESUME_MAY_CHANGE", "STOP_REASONS", "TrainConfig", "Trainer", "RunFolderError",
           "RunningTaskTrainer", "make_trainer", "stoppable_evaluation", "train",
           "resolve_device", "atomic_write_text", "check_seed"]
