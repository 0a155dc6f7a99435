"""One RL run in one folder: :class:`RLRun` (create or resume, train, summarize) and :func:`train_rl`.

See :mod:`baselines.rl` for the run folder's layout and what a resume restores.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from baselines.rl.callback import make_callback, set_rng_state
from baselines.rl.config import RESUME_MAY_CHANGE, RLConfig
from baselines.run_folder import (
    RunFolderError, atomic_write_text, check_resume_config, create_run_folder, find_last, truncate_metrics,
    write_config,
)
from memory_envs import Curriculum, CurriculumDriver, EpisodeAccuracyTracker, EpisodeResultsWrapper


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class RLRun:
    """Train one RecurrentPPO agent on one env (optionally with a curriculum) into a run folder.

    ``resume=True`` continues the run in ``run_dir`` from ``last/`` (see the module doc);
    ``overwrite=True`` replaces a non-empty folder. Without either, a non-empty folder is refused.
    """

    def __init__(self, config: RLConfig, run_dir: str | os.PathLike, *, resume: bool = False,
                 overwrite: bool = False) -> None:
        self.config = config.validate()
        self.run_dir = Path(run_dir)
        if resume and overwrite:
            raise ValueError("resume and overwrite exclude each other: resume continues the run folder, "
                             "overwrite replaces it")
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise RunFolderError(f"run folder {self.run_dir} is a file")
        self.curriculum = config.make_curriculum()
        self.shared = None if self.curriculum is None else EpisodeAccuracyTracker(self.curriculum, config.window)
        self.driver: CurriculumDriver | None = None
        """Collects the training envs' finished episodes for the curriculum (set when training starts)."""
        self.last: Path | None = None
        """The ``last/`` folder this run continues from (None: training starts from scratch)."""
        self.state: dict[str, Any] | None = None
        """The contents of ``last/state.json`` (None: training starts from scratch)."""
        self.finished_summary: dict[str, Any] | None = None
        """The summary of a resumed folder that is already finished; :meth:`run` returns it."""
        if resume:
            self._open_for_resume()
        else:
            create_run_folder(self.run_dir, config.to_json(), overwrite)

    # ----- run folder -------------------------------------------------------------------------
    def _open_for_resume(self) -> None:
        """Check the folder's config, then load the resume state (or note that the run is finished)."""
        config = self.config.to_json()
        check_resume_config(self.run_dir, config, RESUME_MAY_CHANGE)
        summary_path = self.run_dir / "summary.json"
        if summary_path.is_file():
            summary = json.loads(summary_path.read_text())
            if self._finished(summary):
                self.finished_summary = summary
                return
            summary_path.unlink()  # training goes on: the folder no longer holds a finished run
        write_config(self.run_dir, config)
        self.last = find_last(self.run_dir, "state.json")
        lines = 0  # killed before the first saved state: start again in this folder
        if self.last is not None:
            self.state = json.loads((self.last / "state.json").read_text())
            lines = self.state["metrics_lines"]
            if self.curriculum is not None:
                self.curriculum = Curriculum.from_state_dict(self.state["curriculum"])
                self.shared = EpisodeAccuracyTracker(self.curriculum, self.config.window)
                self.shared.load_state_dict(self.state["episode_accuracy"])
        truncate_metrics(self.run_dir, lines)

    def _finished(self, summary: dict[str, Any]) -> bool:
        """Whether a run that ended with ``summary`` is finished under this config's budgets."""
        c = self.config
        return (summary["stopped_because"] == "target_reached" or summary["timesteps"] >= c.total_timesteps
                or (c.max_seconds is not None and summary["seconds"] >= c.max_seconds))

    # ----- training ---------------------------------------------------------------------------
    def _make_env(self) -> gym.Env:
        return gym.make(self.config.env_id, **self.config.env_kwargs())

    def _make_train_env(self) -> Any:
        from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

        c = self.config
        factory = functools.partial(_make_train_env, c.env_id, c.env_kwargs(), self.shared is not None)
        venv = (DummyVecEnv if c.vec_env == "dummy" else SubprocVecEnv)([factory] * c.n_envs)
        venv.seed(c.seed)
        if self.shared is not None:  # the curriculum is driven from here, wherever the envs run
            self.driver = CurriculumDriver(venv, self.shared)
        return venv

    @property
    def ns(self) -> list[int]:
        return [self.config.n] if self.curriculum is None else list(self.curriculum.ns)

    def run(self, on_progress: Callable[[int], None] | None = None,
            on_eval: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train until the target is reached or a budget runs out; returns (and writes) the summary.

        ``on_progress`` is called with the timestep count after every step (a progress bar's hook) and
        ``on_eval`` with each metrics line right after it is written. A resumed folder
        that is already finished returns its summary without training.
        """
        if self.finished_summary is not None:
            return self.finished_summary
        from sb3_contrib import RecurrentPPO

        from agents.rl_policy import RecurrentCorePolicy

        c = self.config
        import memory_envs  # noqa: F401  (registers the env ids)

        venv = self._make_train_env()  # with a restored curriculum, the envs start at its Ns
        tb = str(self.run_dir / "tb") if tensorboard_available() else None
        if self.last is None:
            torch.manual_seed(c.seed)
            self.model = RecurrentPPO(
                RecurrentCorePolicy, venv, n_steps=c.n_steps, batch_size=c.batch_size, n_epochs=c.n_epochs,
                learning_rate=c.learning_rate, gamma=c.gamma, ent_coef=c.ent_coef, seed=c.seed, device=c.device,
                policy_kwargs=c.policy_kwargs(), tensorboard_log=tb, verbose=0,
            )
        else:
            self.model = RecurrentPPO.load(self.last / "model.zip", env=venv, device=c.device, tensorboard_log=tb)
            # load reseeded the global RNGs and the envs with the config's seed: continue the saved RNG
            # streams, and give the envs episodes of their own instead of the run's first ones again.
            cuda = self.model.device.type == "cuda"
            set_rng_state(torch.load(self.last / "rng.pt", weights_only=False), cuda)
            venv.seed(int(np.random.SeedSequence([c.seed, self.model.num_timesteps]).generate_state(1)[0]))
        callback = make_callback(self, on_progress, on_eval)
        reason = callback.stop_reason()  # a restored run can be done already (e.g. a smaller max_seconds)
        if reason is not None:
            callback.stopped_because = reason
        remaining = 0 if reason is not None else max(c.total_timesteps - self.model.num_timesteps, 0)
        self.model.learn(remaining, callback=callback, tb_log_name="rl", reset_num_timesteps=self.last is None)
        callback.finish()
        tmp = self.run_dir / ".model.tmp.zip"
        self.model.save(tmp)
        os.replace(tmp, self.run_dir / "model.zip")
        venv.close()
        return self._summary(callback)

    def _summary(self, cb: Any) -> dict[str, Any]:
        c = self.config
        if self.curriculum is not None:
            max_n = self.curriculum.solved
        else:
            max_n = c.n if cb.fixed_solved else None
        steps_to_n = {}
        if self.shared is not None:
            steps_to_n = {str(n): t for n, t in sorted(cb.timesteps_to_n.items())}
        summary = {
            "max_n": max_n,
            "timesteps": int(self.model.num_timesteps),
            "seconds": round(cb.seconds, 3),
            "stopped_because": cb.stopped_because,
            "active_ns": self.ns,
            "timesteps_to_n": steps_to_n,
            "final_eval": cb.last_eval,
            "env_id": c.env_id,
            "curriculum": c.curriculum,
            "core": c.core,
            "hidden_size": c.hidden_size,
            "tensorboard": (self.run_dir / "tb").exists(),
        }
        atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2))
        return summary


def _make_train_env(env_id: str, env_kwargs: dict[str, Any], curriculum: bool) -> gym.Env:
    """One training env (a module-level function: SubprocVecEnv pickles it into its workers)."""
    from stable_baselines3.common.monitor import Monitor

    env = gym.make(env_id, **env_kwargs)
    return Monitor(EpisodeResultsWrapper(env) if curriculum else env)


def train_rl(config: RLConfig, run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
             on_progress: Callable[[int], None] | None = None,
             on_eval: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` (or continue it: ``resume``) and return the summary.

    See the module doc for the run folder and what a resume restores; ``on_eval`` is called with
    each metrics line.
    """
    return RLRun(config, run_dir, resume=resume, overwrite=overwrite).run(on_progress=on_progress, on_eval=on_eval)
