"""One RL run in one folder: :class:`RLRun` (create or resume, train, summarize) and :func:`train_rl`.

See :mod:`baselines.rl` for the run folder's layout and what a resume restores.
"""

from __future__ import annotations

import functools
import os
import zipfile
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from agents.checkpoint import FORMAT_VERSION, older_version
from baselines.orphans import die_with_parent
from baselines.resume_state import read_state
from baselines.rl.callback import check_rng_state, make_callback, save_model, set_rng_state
from baselines.rl.config import RESUME_MAY_CHANGE, RLConfig
from baselines.run_folder import (
    RunFolderError, RunLock, check_metrics, check_open_mode, check_restart, create_run_folder, open_for_resume,
    read_json, restore_last, write_config, write_json,
)
from baselines.threads import torch_threads
from memory_envs import Curriculum, CurriculumDriver, EpisodeAccuracyTracker, EpisodeResultsWrapper, make_sb3_vec_env


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class RLRun:
    """Train one RecurrentPPO agent on one env (optionally with a curriculum) into a run folder.

    ``resume=True`` continues the run in ``run_dir`` from ``last/`` (or ``last.old/`` if ``last/`` is
    damaged; see the module doc); ``overwrite=True`` replaces a run folder of this project. Without
    either, a non-empty folder is refused. The config is checked before the folder is touched, and
    the folder's lock is held from here until :meth:`run` returns (or :meth:`close`).
    """

    def __init__(self, config: RLConfig, run_dir: str | os.PathLike, *, resume: bool = False,
                 overwrite: bool = False) -> None:
        check_open_mode(resume, overwrite)
        self.config = config.validate()
        self.run_dir = Path(run_dir)
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
        self.resume_note: str | None = None
        """Set when a resume found no saved state and starts the run again, or found the run finished: the line
        saying so."""
        self.finished_summary: dict[str, Any] | None = None
        """The summary of a resumed folder that is already finished; :meth:`run` returns it."""
        self._lock: RunLock | None = None
        if resume:
            self._lock = open_for_resume(self.run_dir, config.to_json(), RESUME_MAY_CHANGE)
            try:
                self._open_for_resume()
            except BaseException:
                self.close()
                raise
        else:
            self._lock = create_run_folder(self.run_dir, config.to_json(), overwrite)

    def close(self) -> None:
        """Release the run folder's lock (:meth:`run` does so when it returns)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ----- run folder -------------------------------------------------------------------------
    def _open_for_resume(self) -> None:
        """Load the resume state (or note that the run is finished); the config was checked, the lock is held."""
        config = self.config.to_json()
        summary_path = self.run_dir / "summary.json"
        if summary_path.is_file():
            summary = read_json(summary_path)
            if self._finished(summary):
                self.finished_summary = summary
                self.resume_note = finished_note(self.run_dir, summary)
                return
        restored = restore_last(self.run_dir, self._read_last)
        if restored is None:  # killed before the first saved state: start again, if that loses nothing
            summary_path.unlink(missing_ok=True)  # an unfinished run's summary: training goes on
            self.resume_note = check_restart(self.run_dir)
            check_metrics(self.run_dir, 0)
        else:
            self.last, (self.state, curriculum, shared) = restored
            check_metrics(self.run_dir, self.state["metrics_lines"], self.last)
            self.curriculum, self.shared = curriculum, shared
            summary_path.unlink(missing_ok=True)  # training goes on: the folder no longer holds a finished run
        write_config(self.run_dir, config)

    def _read_last(self, folder: Path) -> tuple[dict[str, Any], Any, Any]:
        """Read and check the resume state in ``folder``; a damaged file raises a ValueError naming it."""
        for name in ("model.zip", "rng.json", "rng.safetensors"):
            if not (folder / name).is_file():
                raise RunFolderError(f"{folder / name} is missing")
        state = read_json(folder / "state.json")
        try:  # RecurrentPPO.load would fail later, past the point of falling back to last.old/
            with zipfile.ZipFile(folder / "model.zip") as archive:
                damaged = archive.testzip()
                missing = sorted({"data", "policy.pth"} - set(archive.namelist()))
        except (zipfile.BadZipFile, OSError) as error:
            raise RunFolderError(f"{folder / 'model.zip'} is not a readable zip file ({error})") from None
        if damaged is not None or missing:
            raise RunFolderError(f"{folder / 'model.zip'} is damaged (member {damaged} is corrupt, or it lacks "
                                 f"{missing}): not a complete RecurrentPPO.save file")
        rng = read_state(folder, "rng")
        try:
            check_rng_state(rng)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as error:
            raise RunFolderError(f"{folder / 'rng.json'}: the saved RNG states are damaged ({type(error).__name__}: "
                                 f"{error})") from None
        try:
            lines = state["metrics_lines"]
            if not (isinstance(lines, int) and lines >= 0 and isinstance(state["timesteps"], int)):
                raise ValueError(f"metrics_lines {lines!r} and timesteps {state['timesteps']!r} must be counts")
            curriculum, shared = self.curriculum, self.shared
            if curriculum is not None:
                curriculum = Curriculum.from_state_dict(state["curriculum"])
                shared = EpisodeAccuracyTracker(curriculum, self.config.window)
                shared.load_state_dict(state["episode_accuracy"])
        except (KeyError, TypeError, ValueError) as error:
            raise RunFolderError(f"{folder / 'state.json'}: the saved state is damaged ({type(error).__name__}: "
                                 f"{error})") from None
        return state, curriculum, shared

    def _finished(self, summary: dict[str, Any]) -> bool:
        """Whether a run that ended with ``summary`` is finished under this config's budgets."""
        c = self.config
        try:
            if summary["stopped_because"] == "interrupted":
                return False  # a resume runs what the stop skipped: an abandoned or the final evaluation
            return (summary["stopped_because"] in ("target_reached", "non_finite")
                    or summary["timesteps"] >= c.total_timesteps
                    or (c.max_seconds is not None and summary["seconds"] >= c.max_seconds))
        except (KeyError, TypeError) as error:
            raise RunFolderError(f"{self.run_dir / 'summary.json'}: damaged ({type(error).__name__}: {error})"
                                 ) from None

    # ----- training ---------------------------------------------------------------------------
    def _make_env(self) -> gym.Env:
        return gym.make(self.config.env_id, **self.config.env_kwargs())

    def _make_train_env(self) -> Any:
        from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

        c = self.config
        if c.vec_env == "native":  # all envs in one numpy env, Monitor's statistics built in; no curriculum
            venv = make_sb3_vec_env(c.env_id, c.n_envs, **c.env_kwargs())
        else:
            curriculum = self.shared is not None
            if c.vec_env == "dummy":
                venv = DummyVecEnv([functools.partial(_make_train_env, c.env_id, c.env_kwargs(), curriculum)] * c.n_envs)
            else:  # spawned: every worker is this process's child, and ends with it (baselines.orphans)
                factory = functools.partial(_make_train_env, c.env_id, c.env_kwargs(), curriculum, os.getpid())
                venv = SubprocVecEnv([factory] * c.n_envs, start_method="spawn")
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
        try:
            if self.finished_summary is not None:
                return self.finished_summary
            return self._run(on_progress, on_eval)
        finally:
            self.close()

    def _run(self, on_progress: Callable[[int], None] | None,
             on_eval: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        from sb3_contrib import RecurrentPPO

        c = self.config
        import memory_envs  # noqa: F401  (registers the env ids)

        venv = self._make_train_env()  # with a restored curriculum, the envs start at its Ns
        tb = str(self.run_dir / "tb") if tensorboard_available() else None
        if self.last is None:
            torch.manual_seed(c.seed)
            self.model = RecurrentPPO(
                c.policy(), venv, n_steps=c.n_steps, batch_size=c.batch_size, n_epochs=c.n_epochs,
                learning_rate=c.lr, gamma=c.gamma, ent_coef=c.ent_coef, seed=c.seed, device=c.device,
                policy_kwargs=c.policy_kwargs(), tensorboard_log=tb, verbose=0,
            )
        else:
            # model.zip is RecurrentPPO's own format, which holds pickles: the one such file (docs/trust.md).
            try:
                self.model = RecurrentPPO.load(self.last / "model.zip", env=venv, device=c.device,
                                               tensorboard_log=tb)
            except Exception as error:  # a damaged zip raises whatever its reader meets
                venv.close()
                version = self.state.get("format_version", 1) if self.state else FORMAT_VERSION
                if isinstance(version, int) and version < FORMAT_VERSION:  # torch's shape errors are many lines
                    raise RunFolderError(str(older_version(
                        self.last, version, c.core, f"{self.last / 'model.zip'} does not load",
                        "finish the run with the version that saved it, or start it again with overwrite=True"))
                    ) from None
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise RunFolderError(f"{self.last / 'model.zip'} cannot be loaded ({type(error).__name__}: "
                                     f"{first_line})") from None
            # load reseeded the global RNGs and the envs with the config's seed: continue the saved RNG
            # streams, and give the envs episodes of their own instead of the run's first ones again.
            cuda = self.model.device.type == "cuda"
            set_rng_state(read_state(self.last, "rng"), cuda)
            venv.seed(int(np.random.SeedSequence([c.seed, self.model.num_timesteps]).generate_state(1)[0]))
        if tb is None:  # no tensorboard: log nowhere (SB3's default logger would make a /tmp/SB3-* folder)
            from stable_baselines3.common.logger import Logger

            self.model.set_logger(Logger(folder=None, output_formats=[]))
        callback = make_callback(self, on_progress, on_eval)
        reason = callback.stop_reason()  # a restored run can be done already (e.g. a smaller max_seconds)
        if reason is not None:
            callback.stopped_because = reason
        remaining = 0 if reason is not None else max(c.total_timesteps - self.model.num_timesteps, 0)
        try:
            self.model.learn(remaining, callback=callback, tb_log_name="rl", reset_num_timesteps=self.last is None)
        except (ValueError, RuntimeError) as error:  # torch refuses NaN logits / probabilities mid-rollout or update
            bad = callback.non_finite()
            if bad is None and not any(word in str(error) for word in ("invalid values", "nan")):
                raise
            callback.stop_non_finite(bad or "the policy's action logits")
        callback.finish()
        if callback.stopped_because != "non_finite":  # a non-finite policy is not saved: last/ keeps a finite one
            save_model(self.model, self.run_dir / "model.zip")
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
            "task": c.task,
            "curriculum": c.curriculum,
            "core": c.core,
            "hidden_size": c.hidden_size,
            "tensorboard": (self.run_dir / "tb").exists(),
        }
        if cb.message is not None:
            summary["message"] = cb.message
        write_json(self.run_dir / "summary.json", summary)
        return summary


def finished_note(run_dir: Path, summary: dict[str, Any]) -> str:
    """The line that says a resume found the RL run finished and changed nothing."""
    reason = summary["stopped_because"]
    why = {"target_reached": f"it solved N={summary.get('max_n')}",
           "non_finite": "it stopped on a non-finite value",
           "max_seconds": f"it used its time budget ({summary['seconds']:.0f} s)"}.get(
        reason, f"it used its timestep budget ({summary['timesteps']} timesteps)")
    more = "" if reason in ("target_reached", "non_finite") else ": a larger total_timesteps / max_seconds continues it"
    return f"{run_dir} is finished, {why}; nothing was changed{more}"


def _make_train_env(env_id: str, env_kwargs: dict[str, Any], curriculum: bool, parent: int | None = None
                    ) -> gym.Env:
    """One training env (a module-level function: SubprocVecEnv pickles it into its workers). ``parent``: in a
    SubprocVecEnv worker, the pid of the run's process, which the worker ends with (:func:`die_with_parent`)."""
    from stable_baselines3.common.monitor import Monitor

    if parent is not None:
        die_with_parent(parent)
    env = gym.make(env_id, **env_kwargs)
    return Monitor(EpisodeResultsWrapper(env) if curriculum else env)


def train_rl(config: RLConfig, run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
             on_progress: Callable[[int], None] | None = None,
             on_eval: Callable[[dict[str, Any]], None] | None = None, threads: int | None = None) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` (or continue it: ``resume``) and return the summary.

    See the module doc for the run folder and what a resume restores; ``on_eval`` is called with
    each metrics line. ``threads``: torch CPU threads during the run (default: as ``memory-envs rl``, the
    cores not busy with other jobs, :mod:`baselines.threads`); the caller's setting is restored after.
    """
    with torch_threads(threads):
        return RLRun(config, run_dir, resume=resume, overwrite=overwrite).run(on_progress=on_progress, on_eval=on_eval)
