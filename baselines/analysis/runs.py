"""Run folders and checkpoints as the analyses read them: :class:`Run`, :func:`load_run`, :func:`load_model`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import agents
from baselines.run_folder import RunFolderError, not_a_folder, read_json, written_by
from memory_envs.tasks import RUNNING_N, is_running_task


class AnalysisError(ValueError):
    """Input an analysis cannot use (not a run folder, no such head, wrong model kind)."""


@dataclass
class Run:
    """A training run folder: its config and its checkpoints {N: path}, sorted by N (running parity: {0: final})."""

    path: Path
    config: dict[str, Any]
    checkpoints: dict[int, Path] = field(default_factory=dict)
    core_class: type[torch.nn.Module] | None = None
    """The class of an external core, named by the caller (``agents.load``'s ``core_class``)."""

    @property
    def task(self) -> str:
        return self.config.get("task", "parity")

    @property
    def label(self) -> str:
        c = self.config
        return f"{self.path.name} ({c.get('curriculum', '?')}, {c.get('core', '?')})"

    def load(self, n: int, device: str | torch.device = "cpu") -> agents.MultiHeadModel:
        """The checkpoint of N = n on ``device`` (see :func:`load_model`)."""
        if n not in self.checkpoints:
            raise AnalysisError(f"{self.path} has no checkpoint for N={n}; checkpoints: {sorted(self.checkpoints)}")
        return load_model(self.checkpoints[n], device, core_class=self.core_class)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", *,
               core_class: type[torch.nn.Module] | None = None) -> agents.MultiHeadModel:
    """An agents checkpoint that is a MultiHeadModel (analyses need readouts), in eval mode on ``device``
    (the analyses run where the model is; their random draws are made on the CPU, then moved)."""
    try:
        model = agents.load(path, map_location=device, core_class=core_class)
    except (FileNotFoundError, ValueError) as error:
        raise AnalysisError(str(error)) from None
    if not isinstance(model, agents.MultiHeadModel):
        raise AnalysisError(f"{path}: is a bare {type(model).__name__} core, not a MultiHeadModel; the analyses "
                            "need readout heads")
    return model.eval()


def load_run(run_dir: str | os.PathLike, core_class: type[torch.nn.Module] | None = None) -> Run:
    """Read a run folder written by ``baselines.trainer``; AnalysisError if it is not one (an RL run folder
    included: it has no checkpoints per N). A run of an
    external core needs its class (``core_class``): a run folder never makes this import a module."""
    path = Path(run_dir)
    refusal = not_a_folder(path)
    if refusal is not None:
        raise AnalysisError(refusal)
    if not (path / "config.json").is_file():
        raise AnalysisError(f"{path} is not a run folder (no config.json)")
    try:
        config = read_json(path / "config.json")
    except RunFolderError as error:
        raise AnalysisError(str(error)) from None
    if written_by(config) == "rl":
        raise AnalysisError(f"{path} is a run folder of `memory-envs rl`: the analyses read the checkpoints of "
                            "`memory-envs train` (checkpoints/nNNN, one per solved N), and an RL run keeps only its "
                            f"policy (model.zip); `memory-envs plot {path}` draws its curves")
    checkpoints = {}
    root = path / "checkpoints"
    if is_running_task(config.get("task")):  # one network, listed under its one head (tasks.RUNNING_N, 0)
        if not (root / "final").is_dir():
            raise AnalysisError(f"{path} has no checkpoints/final: a running task's run saves its network there "
                                "when it ends (not when interrupted or non-finite)")
        return Run(path, config, {RUNNING_N: root / "final"}, core_class)
    if root.is_dir():
        for sub in root.iterdir():
            if sub.is_dir() and sub.name.startswith("n") and sub.name[1:].isdigit():
                checkpoints[int(sub.name[1:])] = sub
    if not checkpoints:
        raise AnalysisError(f"{path} has no checkpoints (checkpoints/nNNN): no N was solved yet")
    return Run(path, config, dict(sorted(checkpoints.items())), core_class)


def check_head(model: agents.MultiHeadModel, n: int) -> None:
    if n not in model.ns:
        raise AnalysisError(f"the model has no head for N={n}; heads: {model.ns}")
