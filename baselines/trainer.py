"""The supervised trainer of the paper: curriculum over N, checkpoints at every advance, resume.

One run lives in one folder::

    config.json      the TrainConfig
    metrics.jsonl    one line per evaluation (step, time, ns, per-head accuracy, loss, tau stats)
    checkpoints/nNNN the model (agents checkpoint) when the curriculum solved N
    last/            model + trainer state after the latest evaluation (what --resume continues)
    summary.json     max_n, steps, seconds, stopped_because, steps_to_n, mean tau per solved N

The folder's shared parts (config check on resume, the ``last/`` swap, metrics truncation) are
:mod:`baselines.run_folder`'s, used by the RL baseline too.

The loop is written straight through (CleanRL style): draw a batch, summed cross-entropy over
the active heads, clipped SGD step; every ``eval_every`` steps evaluate, update the curriculum,
write metrics and the resume state.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

import agents
from agents.protocol import import_core_class, is_import_path
from baselines.run_folder import (
    RunFolderError, append_metrics, atomic_write_text, check_resume_config, create_run_folder, find_last, save_last,
    truncate_metrics, write_config,
)
from memory_envs import Curriculum, make_batch, tasks

OPTIMIZERS = ("sgd", "adam")
CORES = agents.cores.KINDS
RESUME_MAY_CHANGE = ("max_steps", "max_seconds", "device")
"""The config fields a resumed run may change; every other field must equal the folder's config.json."""


@dataclass
class TrainConfig:
    """Everything a run needs; the defaults are the paper's (SPEC 4)."""

    task: str = "parity"
    curriculum: str = "multi"
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
    optimizer: str = "sgd"
    lr: float = 0.05
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

    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first field that is not allowed."""
        tasks.check_task(self.task)
        Curriculum(self.curriculum, self.start_n, self.target_n, self.threshold, self.window, self.drop)
        tasks.check_ns(self.task, [self.start_n], argument="start_n")
        if is_import_path(self.core):
            import_core_class(self.core)  # an external core: it must import and fit the protocol
        elif self.core not in CORES:
            raise ValueError(f"core must be one of {CORES} or an import path 'package.module:ClassName', "
                             f"got {self.core!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("hidden_size", "batch_size", "eval_every", "eval_batches", "max_steps"):
            tasks.check_positive_int(getattr(self, name), name)
        for name in ("lr", "clip_grad"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0 or None, got {self.max_seconds!r}")
        tasks.check_p(self.task, self.p)
        resolve_device(self.device)
        return self

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tau_init"] = list(self.tau_init)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        data = dict(data)
        if "tau_init" in data:
            data["tau_init"] = tuple(data["tau_init"])
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


def build_model(config: TrainConfig, heads: list[int], generator: torch.Generator) -> agents.MultiHeadModel:
    """The core (built-in with the tau options, or external with ``core_options`` only) plus heads."""
    if is_import_path(config.core):
        options = dict(config.core_options)
    else:
        options = {"tau_init": config.tau_init, "train_tau": config.train_tau, "tau_param": config.tau_param,
                   **config.core_options}
    core = agents.make_core(config.core, 1, config.hidden_size, generator=generator, **options)
    return agents.MultiHeadModel(core, heads, generator=generator)


def build_optimizer(config: TrainConfig, model: agents.MultiHeadModel) -> torch.optim.Optimizer:
    """One parameter group for the core, then one per head in the order the heads were added."""
    groups = [{"params": list(model.core.parameters())}]
    groups += [{"params": list(model.head(n).parameters())} for n in model.ns]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    return torch.optim.Adam(groups, lr=config.lr)


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
    """

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False,
                 overwrite: bool = False) -> None:
        self.config = config.validate()
        self.run_dir = Path(run_dir)
        self.device = resolve_device(config.device)
        self._prepare_folder(resume, overwrite)
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.data_rng = np.random.default_rng([config.seed, 0])
        self.eval_rng = np.random.default_rng([config.seed, 1])
        c = config
        self.curriculum = Curriculum(c.curriculum, c.start_n, c.target_n, c.threshold, c.window, c.drop)
        self.model = build_model(config, list(self.curriculum.ns), self.generator).to(self.device)
        self.optimizer = build_optimizer(config, self.model)
        self.step = 0
        self.seconds = 0.0
        self.steps_to_n: dict[int, int] = {}
        self.tau_at_n: dict[int, float] = {}
        self.metrics_lines = 0
        if resume:
            self._load_state()

    # ----- run folder -------------------------------------------------------------------------
    def _prepare_folder(self, resume: bool, overwrite: bool) -> None:
        config = self.config.to_json()
        if resume:
            check_resume_config(self.run_dir, config, RESUME_MAY_CHANGE)
            write_config(self.run_dir, config)
            return
        create_run_folder(self.run_dir, config, overwrite)
        (self.run_dir / "checkpoints").mkdir()

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
        }

    def _save_last(self) -> None:
        """Model and trainer state as ``last/``, what resume continues."""

        def write(folder: Path) -> None:
            agents.save(self.model, folder)
            torch.save(self._state(), folder / "trainer.pt")

        save_last(self.run_dir, write)

    def _load_state(self) -> None:
        last = find_last(self.run_dir, "trainer.pt")
        if last is None:  # killed before the first saved state: start from scratch in the same folder
            truncate_metrics(self.run_dir, 0)
            return
        self.model = agents.load(last).to(self.device)
        self.optimizer = build_optimizer(self.config, self.model)
        state = torch.load(last / "trainer.pt", map_location="cpu", weights_only=True)  # any device may resume
        self.optimizer.load_state_dict(state["optimizer"])
        self.curriculum = Curriculum.from_state_dict(state["curriculum"])
        self.data_rng.bit_generator.state = state["data_rng"]
        self.eval_rng.bit_generator.state = state["eval_rng"]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.seconds = state["step"], state["seconds"]
        self.steps_to_n = {int(k): v for k, v in state["steps_to_n"].items()}
        self.tau_at_n = {int(k): v for k, v in state["tau_at_n"].items()}
        self.metrics_lines = state["metrics_lines"]
        truncate_metrics(self.run_dir, self.metrics_lines)

    # ----- training ---------------------------------------------------------------------------
    def _batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        batch = make_batch(self.config.task, self.curriculum.ns, self.config.batch_size, rng=rng, p=self.config.p)
        tensors = batch.to_torch(self.device)
        return tensors["inputs"], tensors["labels"]

    def _logits(self, inputs: torch.Tensor) -> dict[int, torch.Tensor]:
        state = self.model.core.initial_state(inputs.shape[1], generator=self.generator)  # CPU draw, moved
        return self.model(inputs, ns=self.curriculum.ns, state=state)

    def train_step(self) -> float:
        inputs, labels = self._batch(self.data_rng)
        logits = self._logits(inputs)
        loss = sum(F.cross_entropy(logits[n], labels[:, k]) for k, n in enumerate(self.curriculum.ns))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad)
        self.optimizer.step()
        self.step += 1
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self) -> dict[int, float]:
        """Accuracy per active N over ``eval_batches`` fresh batches."""
        correct = torch.zeros(len(self.curriculum.ns), device=self.device)
        total = 0
        for _ in range(self.config.eval_batches):
            inputs, labels = self._batch(self.eval_rng)
            logits = self._logits(inputs)
            for k, n in enumerate(self.curriculum.ns):
                correct[k] += (logits[n].argmax(dim=1) == labels[:, k]).sum()
            total += labels.shape[0]
        return {n: float(c) / total for n, c in zip(self.curriculum.ns, correct.tolist())}

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
        }
        append_metrics(self.run_dir, line)
        self.metrics_lines += 1
        return line

    def run(self, on_eval: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train until the target N is solved or a budget runs out; returns (and writes) the summary."""
        config = self.config
        started = time.perf_counter() - self.seconds
        losses: list[float] = []
        stopped_because = "max_steps"
        while not self.curriculum.finished:
            if self.step >= config.max_steps:
                stopped_because = "max_steps"
                break
            if config.max_seconds is not None and self.seconds >= config.max_seconds:
                stopped_because = "max_seconds"
                break
            losses.append(self.train_step())
            self.seconds = time.perf_counter() - started
            if self.step % config.eval_every == 0:
                ns = list(self.curriculum.ns)
                accuracy = self.evaluate()
                solved_before = self.curriculum.solved
                if self.curriculum.update(accuracy) or self.curriculum.solved != solved_before:
                    self._advance(solved_before)
                line = self._log_metrics(accuracy, float(np.mean(losses)), ns)
                losses = []
                self.seconds = time.perf_counter() - started
                self._save_last()
                if on_eval is not None:
                    on_eval(line)
        else:
            stopped_because = "target_reached"
        return self._write_summary(stopped_because)

    def _write_summary(self, stopped_because: str) -> dict[str, Any]:
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
        atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2))
        return summary


def train(config: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
          on_eval: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` and return the summary (see :class:`Trainer`)."""
    return Trainer(config, run_dir, resume=resume, overwrite=overwrite).run(on_eval)


__all__ = ["TrainConfig", "Trainer", "RunFolderError", "train", "resolve_device", "atomic_write_text"]
