"""Population training: G networks of one core kind and hidden size trained side by side in one process.

Each member is a solo :class:`~baselines.trainer.Trainer`: its own ``TrainConfig`` (seed, task,
curriculum, start/target N, lr, momentum, threshold, p, ... may all differ), curriculum state,
heads, optimizer state, data and eval RNG streams, gradient clipping and run folder, in exactly a
solo run's layout. Only the recurrence is shared: each step the members' cores run as ONE batched
recurrence (:func:`agents.cores.run_side_by_side`), so G networks cost about the kernel launches of
one. That holds for the leaky RNN, GRU and LSTM; the architecture zoo's cores and external cores do
not group, so run_side_by_side runs their members one after the other within each step and a
population of them costs the sum of its members (it still shares one process and its data pipeline;
batching the zoo's whole-sequence operations across members did not pay on the CPU: docs/agents.md). Members whose batches differ in length run to the longest and each reads its readouts at its
own last step, so a member's loss, gradient and draws are a solo run's: with the same config and
seed it draws the same batches and initial weights, and trains like the solo run up to float rounding
(exactly on resume, as a solo run, when the members evaluate at the same steps).

A member that solves its target N or runs out of budget writes its summary (its folder is final) and
leaves the group; the others go on. ``max_seconds`` counts the population's wall time.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import torch

from agents.cores import run_side_by_side
from baselines import interrupt
from baselines.backends import Unit
from baselines.population_memory import check_memory, peak_memory
from baselines.run_folder import check_new, check_resume_config
from baselines.threads import torch_threads
from baselines.trainer import RESUME_MAY_CHANGE, Trainer, TrainConfig, stoppable_evaluation
from memory_envs.tasks import check_positive_int

SHARED = ("core", "hidden_size", "batch_size", "device")
"""The config fields every member must share: they fix the shape of the one batched recurrence."""

Logits = dict[int, torch.Tensor]


def _per_member(resume: bool | Sequence[bool], members: int) -> list[bool]:
    if isinstance(resume, bool):
        return [resume] * members
    if len(resume) != members:
        raise ValueError(f"resume must be one bool or one per member ({members}), got {len(resume)}")
    return [bool(r) for r in resume]


def check_population(configs: Sequence[TrainConfig], run_dirs: Sequence[str | os.PathLike], *,
                     resume: bool | Sequence[bool] = False, overwrite: bool = False) -> None:
    """Raise ValueError (RunFolderError for a folder) before anything is written: a bad config, fields of
    ``SHARED`` that differ, run folders not one per member, or a folder that cannot be used as asked.
    ``resume``: for every member, or one flag per member."""
    if not configs:
        raise ValueError("a population needs at least one member config")
    if len(run_dirs) != len(configs):
        raise ValueError(f"run_dirs must give one folder per member: {len(configs)} configs, {len(run_dirs)} folders")
    resume = _per_member(resume, len(configs))
    for k, config in enumerate(configs):
        try:
            config.validate()
        except ValueError as error:
            raise ValueError(f"member {k}: {error}") from None
    for name in SHARED:
        values = sorted({str(getattr(c, name)) for c in configs})
        if len(values) > 1:
            raise ValueError(f"population members must share {name} (one batched recurrence), got {values}")
    folders = [Path(d).resolve() for d in run_dirs]
    if len(set(folders)) != len(folders):
        raise ValueError("run_dirs must be distinct: two members cannot share a run folder")
    for config, folder, resuming in zip(configs, folders, resume):
        if resuming:
            check_resume_config(folder, config.to_json(), RESUME_MAY_CHANGE)
        else:
            check_new(folder, overwrite)


class Population:
    """Train ``configs[g]`` into ``run_dirs[g]`` for every member g, side by side (see module doc)."""

    def __init__(self, configs: Sequence[TrainConfig], run_dirs: Sequence[str | os.PathLike], *,
                 resume: bool | Sequence[bool] = False, overwrite: bool = False,
                 available_memory: int | None = None) -> None:
        """Refuses (ValueError, before writing anything) a bad population, or one that needs more memory
        than ``available_memory`` bytes (default: the device's free memory; see population_memory)."""
        check_population(configs, run_dirs, resume=resume, overwrite=overwrite)
        self.memory_needed = check_memory(configs, available_memory)
        self.members: list[Trainer] = []
        try:
            for config, run_dir, resuming in zip(configs, run_dirs, _per_member(resume, len(configs))):
                self.members.append(Trainer(config, run_dir, resume=resuming, overwrite=overwrite))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release every member's run-folder lock (:meth:`run` does so when it returns)."""
        for member in self.members:
            member.close()

    def _logits(self, members: Sequence[Trainer], eval_stream: bool
                ) -> list[tuple[Logits, torch.Tensor]]:
        """One batch per member from its data (or eval) stream, all cores in one recurrence: each
        member's logits at its own last step, and its labels."""
        batches = [m.batch(m.eval_rng if eval_stream else m.data_rng) for m in members]
        states = [m.initial_state(inputs.shape[1]) for m, (inputs, _) in zip(members, batches)]
        results = run_side_by_side([m.model.core for m in members], [inputs for inputs, _ in batches], states,
                                   last_only=True)
        return [(m.model.readout(last, m.curriculum.ns), labels)
                for m, (last, _), (_, labels) in zip(members, results, batches)]

    def train_step(self, members: Sequence[Trainer]) -> list[float]:
        """One clipped optimizer step for each of ``members`` (each its own loss, gradient and clip); returns
        their losses. A member whose loss is not finite takes no step (as a solo run)."""
        losses = [m.loss(logits, labels) for m, (logits, labels) in zip(members, self._logits(members, False))]
        values = torch.stack(losses).detach().tolist()
        finite = [k for k, value in enumerate(values) if math.isfinite(value)]
        for k in finite:
            members[k].optimizer.zero_grad(set_to_none=True)
        if finite:  # the members share no parameter: each gets its own loss's gradient
            torch.stack([losses[k] for k in finite]).sum().backward()
        for k in finite:
            members[k].apply_gradients()
        return values

    @torch.no_grad()
    def evaluate(self, members: Sequence[Trainer]) -> list[dict[int, float]]:
        """Each member's accuracy per active N over its own ``eval_batches`` batches (its eval stream)."""
        correct = [torch.zeros(len(m.curriculum.ns), dtype=torch.long, device=m.device) for m in members]
        for i in range(max(m.config.eval_batches for m in members)):
            interrupt.check()
            part = [k for k, m in enumerate(members) if i < m.config.eval_batches]
            outputs = self._logits([members[k] for k in part], True)
            for k, (logits, labels) in zip(part, outputs):
                correct[k] += members[k].correct(logits, labels)
        return [m.accuracy(c) for m, c in zip(members, correct)]

    def progress(self, running: Sequence[int]) -> dict[str, Any]:
        """Members still running, the largest step taken, the smallest and largest newest N reached, and the
        peak memory per member in bytes (the device's peak over the members; on CPU the process's peak
        resident memory) next to the estimate checked before training (None for external cores)."""
        members = len(self.members)
        newest = [max(m.curriculum.ns) for m in self.members]
        return {"running": len(running), "members": members, "step": max(m.step for m in self.members),
                "n_min": min(newest), "n_max": max(newest),
                "peak_memory_per_member": peak_memory(self.members[0].device) // members,
                "memory_per_member_estimate": None if self.memory_needed is None else self.memory_needed // members}

    def run(self, on_eval: Callable[[int, dict[str, Any]], None] | None = None,
            on_progress: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Train every unfinished member until it solves its target or runs out of budget; returns (and
        writes) the members' summaries and releases their run folders' locks. ``on_eval(g, line)`` after
        member g's evaluations, ``on_progress(self.progress(...))`` after every step with an evaluation or a
        member leaving. A member whose numbers turn non-finite stops as a solo run does."""
        try:
            return self._run(on_eval, on_progress)
        finally:
            self.close()

    def _run(self, on_eval: Callable[[int, dict[str, Any]], None] | None,
             on_progress: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
        summaries: dict[int, dict[str, Any]] = {}

        def going_on(ks: Sequence[int]) -> list[int]:
            """The members of ``ks`` that train on; each that stops now writes its summary."""
            still = []
            for k in ks:
                reason = self.members[k].stop_reason()
                if reason is None:
                    still.append(k)
                else:
                    summaries[k] = self.members[k].write_summary(reason)
            return still

        for member in self.members:
            member.start_clock()
        running = going_on(range(len(self.members)))
        while running:
            due = [k for k in running if self.members[k].eval_pending]  # abandoned by a stop: evaluate first
            if not due:
                members = [self.members[k] for k in running]
                stepped = [member.record_loss(loss) for member, loss in zip(members, self.train_step(members))]
                due = [k for k, counts in zip(running, stepped) if counts and self.members[k].eval_due()]
            if due:
                evaluated = [self.members[k] for k in due]
                accuracies = stoppable_evaluation(evaluated, lambda: self.evaluate(evaluated))
                for k, accuracy in zip(due, accuracies or []):
                    self.members[k].finish_eval(accuracy, None if on_eval is None else functools.partial(on_eval, k))
            still = going_on(running)
            if on_progress is not None and (due or len(still) < len(running)):
                on_progress(self.progress(still))
            running = still
        return [summaries[k] for k in range(len(self.members))]


def train_population(configs: Sequence[TrainConfig], run_dirs: Sequence[str | os.PathLike], *,
                     resume: bool | Sequence[bool] = False, overwrite: bool = False,
                     on_eval: Callable[[int, dict[str, Any]], None] | None = None,
                     on_progress: Callable[[dict[str, Any]], None] | None = None,
                     threads: int | None = None) -> list[dict[str, Any]]:
    """Train the population ``configs`` into ``run_dirs`` and return each member's summary. ``threads``: torch
    CPU threads during the run (default: the cores not busy with other jobs, :mod:`baselines.threads`)."""
    with torch_threads(threads):
        return Population(configs, run_dirs, resume=resume, overwrite=overwrite).run(on_eval, on_progress)


def population_units(configs: Sequence[TrainConfig], run_dirs: Sequence[str | os.PathLike], *,
                     resume: bool | Sequence[bool] = False, overwrite: bool = False,
                     population_size: int | None = None, threads: int | None = None) -> list[Unit]:
    """The members split into populations of at most ``population_size`` (default: all in one), each one
    unit of work for :func:`baselines.backends.run_units` (a local process or a Ray task) that calls
    :func:`train_population` with ``threads`` and returns the members' summaries. Everything is checked
    here, before any unit runs or anything is written."""
    check_population(configs, run_dirs, resume=resume, overwrite=overwrite)
    if population_size is not None:
        check_positive_int(population_size, "population_size")
    resume = _per_member(resume, len(configs))
    size = population_size or len(configs)
    units = []
    for start in range(0, len(configs), size):
        part = slice(start, start + size)
        folders = tuple(str(d) for d in run_dirs[part])
        name = f"population of {len(folders)}: " + ", ".join(Path(f).name for f in folders)
        work = functools.partial(train_population, resume=resume[part], overwrite=overwrite, threads=threads)
        units.append(Unit(name, folders, work, (list(configs[part]), list(folders))))
    return units


def grid(base: TrainConfig, *, seeds: Sequence[int] = (), tasks: Sequence[str] = (), curricula: Sequence[str] = (),
         lrs: Sequence[float | None] = ()) -> list[tuple[str, TrainConfig]]:
    """One member per combination of the given values (an empty axis keeps ``base``'s value), each with
    its folder name ``<task>-<curriculum>-lr<lr>-s<seed>``, in the order task, curriculum, lr, seed."""
    members = []
    for task in tasks or (base.task,):
        for curriculum in curricula or (base.curriculum,):
            for lr in lrs or (base.lr,):
                for seed in seeds or (base.seed,):
                    config = dataclasses.replace(base, task=task, curriculum=curriculum, lr=lr, seed=seed)
                    members.append((f"{task}-{curriculum}-lr{config.optimizer_settings()[1]:g}-s{seed}", config))
    names = [name for name, _ in members]
    if len(set(names)) != len(names):
        raise ValueError(f"the grid repeats a combination: {sorted(n for n in names if names.count(n) > 1)}")
    return members


__all__ = ["SHARED", "Population", "check_population", "grid", "population_units", "train_population"]
