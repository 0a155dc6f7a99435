"""RL baseline: RecurrentPPO (sb3-contrib) with our tau cores on N-parity / N-DMS (issue 5 part 4).

    memory-envs rl --env NDMS-v0 --n 2 --mode every_step --core gru --total-timesteps 50000

One run lives in one folder, like the supervised trainer's (:mod:`baselines.trainer`)::

    config.json      the RLConfig
    metrics.jsonl    one line per evaluation: timesteps, time (s), ns (the Ns evaluated: the
                     curriculum's active Ns), mean_return, success_rate, accuracy (per N, keys str(N))
    last/            the resume state (what ``resume=True`` / ``--resume`` continues): model.zip
                     (``RecurrentPPO.save``), state.json (timesteps, seconds, curriculum, ...), rng.pt
    model.zip        the final RecurrentPPO (``RecurrentPPO.load`` it; no custom_objects needed)
    summary.json     max_n, timesteps, seconds, stopped_because, ... (see :meth:`RLRun._summary`)
    tb/              TensorBoard logs, only if ``tensorboard`` is installed (the ``rl`` extra)

Training envs: ``n_envs`` single envs (``gym.make(env_id, **env_kwargs)``) in an SB3 DummyVecEnv,
seeded ``seed + i``. With a curriculum, ONE :class:`memory_envs.Curriculum` and ONE
:class:`memory_envs.EpisodeAccuracyTracker` serve the whole run: every training env reports its
finished episodes' ``head_accuracy`` to the shared tracker, and when the curriculum advances the new
Ns are set on every env (they take effect at each env's next reset). The action space is fixed at
the largest number of heads the curriculum will score (Discrete(2) for ``single``,
MultiDiscrete([2] * (n_max - n + 1)) for ``multi``).

Evaluation, every ``eval_every`` timesteps and at the end: ``eval_episodes`` episodes of a separate
env scoring the curriculum's active Ns (or the fixed N), deterministic actions, reseeded the same
way at every evaluation. The run stops when the target is reached (the curriculum finished n_max,
or for a fixed N the evaluation passes the curriculum rule: mean and newest head accuracy >
``threshold``), or when ``total_timesteps`` / ``max_seconds`` run out.

Resume. After every evaluation, at the next rollout boundary (once PPO has trained on every timestep
it has counted), and at the end of the run, the resume state replaces ``last/`` in one rename
(:func:`baselines.run_folder.save_last`: written to ``last.new/`` first; ``last.old/`` is the fallback
if a kill falls between the renames).
``resume=True`` continues the folder from it (an unchanged config except ``total_timesteps``,
``max_seconds`` and ``device``). Restored: the policy weights, the Adam state, ``num_timesteps`` and
the rest of ``RecurrentPPO.save``; the elapsed seconds (the time budget and the metrics' ``time``
count the earlier part); the curriculum and the shared tracker's episode windows; the evaluation
schedule, ``timesteps_to_n`` and the last evaluation; the global torch (and CUDA), numpy and Python
RNG states; ``metrics.jsonl`` is cut back to the lines written before the state. Not restored: the
training envs' episodes in progress and the recurrent state (every env starts a new episode from a
zero state; the envs draw episodes in blocks, so their generators are reseeded from
``(seed, timesteps)`` rather than continued), SB3's Monitor episode statistics, and the work after
the saved state (redone). A resumed run is therefore not identical to an uninterrupted one, but
resuming the same state twice gives the same run. A folder whose ``summary.json`` says it is finished
(target reached, or the timestep / time budget spent under the current config) is returned as is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
import torch

from baselines.run_folder import (
    RunFolderError, append_metrics, atomic_write_text, check_resume_config, create_run_folder, find_last, save_last,
    truncate_metrics, write_config,
)
from baselines.trainer import CORES, resolve_device
from memory_envs import ENV_IDS, Curriculum, CurriculumWrapper, EpisodeAccuracyTracker, tasks
from memory_envs.envs import MODES, EnvConfig

TASK_OF_ENV = {env_id: task for task, env_id in ENV_IDS.items()}
RL_CURRICULA = ("single", "multi")
STOP_REASONS = ("target_reached", "max_timesteps", "max_seconds")
DEFAULT_LR = {"leaky": 3e-3, "leaky_mod": 3e-3, "gru": 1e-2, "lstm": 1e-2}
"""Learning rates that learned n=2 well (docs/rl.md); used when ``lr`` is None."""
RESUME_MAY_CHANGE = ("total_timesteps", "max_seconds", "device")
"""The config fields a resumed run may change; every other field must equal the folder's config.json."""


@dataclass
class RLConfig:
    """Everything an RL run needs. ``n`` is the fixed N, or the first N of the curriculum."""

    env_id: str = "NDMS-v0"
    n: int = 2
    mode: str = "final"
    p: float | str | None = None
    length_range: tuple[int, int] | None = None
    curriculum: str | None = None
    n_max: int | None = None
    threshold: float = 0.98
    window: int = 100
    core: str = "leaky"
    hidden_size: int = 32
    tau_init: tuple[float, float] = (1.0, 2.0)
    train_tau: bool = True
    core_options: dict[str, Any] = field(default_factory=dict)
    n_envs: int = 8
    n_steps: int = 64
    batch_size: int = 128
    n_epochs: int = 4
    lr: float | None = None
    gamma: float = 0.99
    ent_coef: float = 0.0
    total_timesteps: int = 100_000
    max_seconds: float | None = None
    eval_every: int = 10_000
    eval_episodes: int = 50
    seed: int = 0
    device: str = "cpu"

    @property
    def task(self) -> str:
        return TASK_OF_ENV[self.env_id]

    @property
    def learning_rate(self) -> float:
        return DEFAULT_LR[self.core] if self.lr is None else float(self.lr)

    def validate(self) -> "RLConfig":
        """Raise ValueError naming the first field that is not allowed."""
        if self.env_id not in TASK_OF_ENV:
            raise ValueError(f"env_id must be one of {sorted(TASK_OF_ENV)}, got {self.env_id!r}")
        if self.core not in CORES:
            raise ValueError(f"core must be one of {CORES}, got {self.core!r}")
        if self.curriculum is not None and self.curriculum not in RL_CURRICULA:
            raise ValueError(f"curriculum must be None or one of {RL_CURRICULA}, got {self.curriculum!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        for name in ("hidden_size", "n_envs", "n_steps", "batch_size", "n_epochs", "total_timesteps",
                     "eval_every", "eval_episodes", "window"):
            tasks.check_positive_int(getattr(self, name), name)
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)):
            raise ValueError(f"n must be an integer, got {self.n!r}")
        tasks.check_ns(self.task, [self.n], argument="n")
        if self.curriculum is None:
            if self.n_max is not None:
                raise ValueError(f"n_max needs a curriculum (single or multi), got n_max={self.n_max!r} "
                                 "without one")
        elif self.n_max is None:
            raise ValueError("n_max is required with a curriculum (the action space is fixed at its size)")
        self.make_curriculum()  # checks n_max >= n and threshold
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be > 0 or None, got {self.lr!r}")
        if not (isinstance(self.gamma, (int, float)) and 0.0 <= self.gamma <= 1.0):
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")
        if not (isinstance(self.ent_coef, (int, float)) and self.ent_coef >= 0):
            raise ValueError(f"ent_coef must be >= 0, got {self.ent_coef!r}")
        if self.max_seconds is not None and not (isinstance(self.max_seconds, (int, float)) and self.max_seconds > 0):
            raise ValueError(f"max_seconds must be > 0 or None, got {self.max_seconds!r}")
        if self.n_envs * self.n_steps < 2:
            raise ValueError("n_envs * n_steps must be at least 2 (PPO normalizes advantages over a rollout)")
        if self.length_range is not None:  # must hold the largest N this run will score
            tasks.check_length_range(self.length_range, self.n_max or self.n)
        EnvConfig.build(self.task, **self.env_kwargs())  # p, length_range, ...
        if len(self.tau_init) != 2:
            raise ValueError(f"tau_init must be (low, high), got {self.tau_init!r}")
        if not isinstance(self.core_options, dict):
            raise ValueError(f"core_options must be a dict, got {type(self.core_options).__name__}")
        import agents

        options = self.policy_kwargs()["core_options"]
        try:
            agents.make_core(self.core, 1, self.hidden_size, **{**options, "h0": "zero"})
        except (TypeError, ValueError) as e:
            raise ValueError(f"core_options / tau_init {options!r} do not fit core {self.core!r}: {e}") from None
        resolve_device(self.device)
        return self

    def make_curriculum(self) -> Curriculum | None:
        if self.curriculum is None:
            return None
        try:
            return Curriculum(self.curriculum, self.n, self.n_max, self.threshold)
        except ValueError as e:  # Curriculum names its own arguments: say which config field
            raise ValueError(str(e).replace("start ", "n ", 1)) from None

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``gym.make(env_id, ...)`` for the training and evaluation envs."""
        kwargs: dict[str, Any] = {"mode": self.mode, "p": self.p}
        if self.length_range is not None:
            kwargs["length_range"] = tuple(self.length_range)
        if self.curriculum == "multi":
            kwargs.update(heads=[self.n], max_heads=self.n_max - self.n + 1)
        else:
            kwargs["n"] = self.n
        return kwargs

    def policy_kwargs(self) -> dict[str, Any]:
        options = {"tau_init": list(self.tau_init), "train_tau": self.train_tau, **self.core_options}
        return {"core": self.core, "core_options": options, "lstm_hidden_size": self.hidden_size}

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tau_init"] = list(self.tau_init)
        data["length_range"] = None if self.length_range is None else list(self.length_range)
        return data


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def evaluate_policy(model: Any, env: gym.Env, episodes: int, seed: int, ns: Sequence[int]) -> dict[str, Any]:
    """Run ``episodes`` episodes of ``env`` scoring ``ns`` with deterministic actions.

    Returns mean_return, success_rate and accuracy (mean head_accuracy per N, keys are str(N)).
    """
    env.unwrapped.set_ns(ns)
    returns, successes, accuracies = [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        state, start, done, total = None, np.ones(1, dtype=bool), False, 0.0
        while not done:
            action, state = model.predict(obs[None], state=state, episode_start=start, deterministic=True)
            start = np.zeros(1, dtype=bool)
            obs, reward, terminated, truncated, info = env.step(action[0])
            total += reward
            done = terminated or truncated
        returns.append(total)
        successes.append(float(info["is_success"]))
        accuracies.append(np.asarray(info["head_accuracy"], dtype=float))
    acc = np.mean(accuracies, axis=0)
    return {"mean_return": float(np.mean(returns)), "success_rate": float(np.mean(successes)),
            "accuracy": {str(n): float(a) for n, a in zip(info["ns"], acc)}}


def _rng_state(cuda: bool) -> dict[str, Any]:
    """The global RNG states a run draws from: torch (sampled actions), numpy (minibatch order), Python."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if cuda:
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], cuda: bool) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if cuda and "cuda" in state:  # a state saved on the CPU leaves CUDA as RecurrentPPO.load seeded it
        torch.cuda.set_rng_state_all(state["cuda"])


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
        from stable_baselines3.common.monitor import Monitor
        from stable_baselines3.common.vec_env import DummyVecEnv

        def factory() -> gym.Env:
            env = self._make_env()
            if self.shared is not None:
                env = CurriculumWrapper(env, self.shared)
            return Monitor(env)

        venv = DummyVecEnv([factory] * self.config.n_envs)
        venv.seed(self.config.seed)
        return venv

    @property
    def ns(self) -> list[int]:
        return [self.config.n] if self.curriculum is None else list(self.curriculum.ns)

    def run(self, progress: bool = False,
            on_eval: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train until the target is reached or a budget runs out; returns (and writes) the summary.

        ``on_eval`` is called with each metrics line right after it is written. A resumed folder
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
            _set_rng_state(torch.load(self.last / "rng.pt", weights_only=False), cuda)
            venv.seed(int(np.random.SeedSequence([c.seed, self.model.num_timesteps]).generate_state(1)[0]))
        callback = _make_callback(self, progress, on_eval)
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


class _RunCallbackMixin:
    """Evaluation every ``eval_every`` timesteps, metrics, early stop, budgets, resume state and a tqdm bar.

    Mixed into SB3's BaseCallback by :func:`_make_callback` (SB3 is imported only when a run starts,
    so that ``baselines.rl`` imports without the ``rl`` extra). A resumed run starts from
    ``run.state``.
    """

    def __init__(self, run: RLRun, progress: bool, on_eval: Callable[[dict[str, Any]], None] | None) -> None:
        super().__init__()  # type: ignore[call-arg]
        self.run = run
        self.on_eval = on_eval
        state = run.state or {}
        self.next_eval: int = state.get("next_eval", run.config.eval_every)
        self.metrics_lines: int = state.get("metrics_lines", 0)
        self.last_eval: dict[str, Any] | None = state.get("last_eval")
        self.last_eval_timesteps: int = state.get("last_eval_timesteps", -1)
        self.fixed_solved: bool = state.get("fixed_solved", False)
        self.timesteps_to_n: dict[int, int] = {int(n): t for n, t in state.get("timesteps_to_n", {}).items()}
        self.seconds: float = state.get("seconds", 0.0)
        self.stopped_because = "max_timesteps"
        self.state_due = False
        """An evaluation ran since the last saved state: save one at the next rollout boundary."""
        self.bar = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=run.config.total_timesteps, initial=state.get("timesteps", 0), unit="step",
                            dynamic_ncols=True, file=sys.stderr)

    def _on_training_start(self) -> None:
        self.started = time.perf_counter() - self.seconds
        self.eval_env = self.run._make_env()

    def _target_reached(self) -> bool:
        cur = self.run.curriculum
        return cur.finished if cur is not None else self.fixed_solved

    def stop_reason(self) -> str | None:
        """``"target_reached"`` or ``"max_seconds"`` if the run must stop now, else None (the
        timestep budget is ``learn``'s: it ends after training on the last rollout)."""
        if self._target_reached():
            return "target_reached"
        max_seconds = self.run.config.max_seconds
        if max_seconds is not None and self.seconds >= max_seconds:
            return "max_seconds"
        return None

    def _note_solved(self) -> None:
        cur = self.run.curriculum
        if cur is not None and cur.solved is not None and cur.solved not in self.timesteps_to_n:
            self.timesteps_to_n[cur.solved] = int(self.num_timesteps)

    def _evaluate(self) -> dict[str, Any]:
        c = self.run.config
        ns = self.run.ns
        result = evaluate_policy(self.model, self.eval_env, c.eval_episodes, c.seed + 1_000_003, ns)
        self.seconds = time.perf_counter() - self.started
        if self.run.curriculum is None:
            acc = result["accuracy"][str(c.n)]
            self.fixed_solved = self.fixed_solved or acc > c.threshold
        line = {"timesteps": int(self.num_timesteps), "time": round(self.seconds, 3), "ns": ns, **result}
        append_metrics(self.run.run_dir, line)
        self.metrics_lines += 1
        self.state_due = True
        for key in ("mean_return", "success_rate"):
            self.logger.record(f"eval/{key}", result[key])
        for n, a in result["accuracy"].items():
            self.logger.record(f"eval/accuracy_n{n}", a)
        self.logger.record("eval/newest_n", ns[-1])
        self.logger.dump(self.num_timesteps)
        self.last_eval, self.last_eval_timesteps = line, int(self.num_timesteps)
        if self.bar is not None:
            newest = result["accuracy"][str(ns[-1])]
            self.bar.set_postfix_str(f"N={ns[0]}..{ns[-1]} acc(N={ns[-1]})={newest:.3f} "
                                     f"success={result['success_rate']:.2f}")
        if self.on_eval is not None:
            self.on_eval(line)
        return line

    def _save_state(self) -> None:
        """Write the resume state to ``last.new/`` and swap it in as ``last/``."""
        run = self.run
        self.seconds = time.perf_counter() - self.started
        state = {
            "timesteps": int(self.model.num_timesteps),
            "seconds": self.seconds,
            "metrics_lines": self.metrics_lines,
            "next_eval": self.next_eval,
            "last_eval": self.last_eval,
            "last_eval_timesteps": self.last_eval_timesteps,
            "fixed_solved": self.fixed_solved,
            "timesteps_to_n": {str(n): t for n, t in self.timesteps_to_n.items()},
            "curriculum": None if run.curriculum is None else run.curriculum.state_dict(),
            "episode_accuracy": None if run.shared is None else run.shared.state_dict(),
        }

        def write(folder: Path) -> None:
            self.model.save(folder / "model.zip")
            torch.save(_rng_state(self.model.device.type == "cuda"), folder / "rng.pt")
            (folder / "state.json").write_text(json.dumps(state, indent=2))

        save_last(run.run_dir, write)
        self.state_due = False

    def _on_rollout_start(self) -> None:
        # PPO has trained on the previous rollout: a state saved now counts only trained-on timesteps.
        if self.state_due:
            self._save_state()

    def _on_step(self) -> bool:
        c = self.run.config
        self._note_solved()
        if self.bar is not None:
            self.bar.update(self.num_timesteps - self.bar.n)
        if self.num_timesteps >= self.next_eval:
            while self.next_eval <= self.num_timesteps:
                self.next_eval += c.eval_every
            self._evaluate()
        self.seconds = time.perf_counter() - self.started
        reason = self.stop_reason()
        if reason is not None:
            self.stopped_because = reason
            return False
        return True

    def finish(self) -> None:
        """The final evaluation (unless one just ran at this timestep), the final resume state; closes
        the bar and the evaluation env."""
        self._note_solved()
        if self.last_eval_timesteps != self.num_timesteps:
            self._evaluate()
            if self._target_reached() and self.stopped_because != "max_seconds":
                self.stopped_because = "target_reached"
        self._save_state()
        if self.bar is not None:
            self.bar.update(self.num_timesteps - self.bar.n)
            self.bar.close()
        self.eval_env.close()


def _make_callback(run: RLRun, progress: bool, on_eval: Callable[[dict[str, Any]], None] | None) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    cls = type("_RunCallback", (_RunCallbackMixin, BaseCallback), {})
    return cls(run, progress, on_eval)


def train_rl(config: RLConfig, run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
             progress: bool = False, on_eval: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` (or continue it: ``resume``) and return the summary.

    See the module doc for the run folder and what a resume restores; ``on_eval`` is called with
    each metrics line.
    """
    return RLRun(config, run_dir, resume=resume, overwrite=overwrite).run(progress=progress, on_eval=on_eval)


# ----- command line ---------------------------------------------------------------------------------
def _p(value: str) -> float | str:
    return value if value == "uniform" else float(value)


def add_rl_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``rl`` subcommand (handler :func:`cmd_rl` via ``set_defaults(func=...)``)."""
    from baselines.cli import positive_int  # the command's shared argument types

    d = RLConfig()
    parser = subparsers.add_parser(
        "rl", help="train RecurrentPPO with a tau core (needs the rl extra)",
        description="Train sb3-contrib's RecurrentPPO with our recurrent cores on NParity-v0 / NDMS-v0, "
                    "optionally with a curriculum over N, and write a run folder "
                    "(config.json, metrics.jsonl, last/, model.zip, summary.json) that --resume continues.")
    g = parser.add_argument_group("environment and curriculum")
    g.add_argument("--env", default=d.env_id, help=f"env id: {' or '.join(sorted(TASK_OF_ENV))} (default: {d.env_id})")
    g.add_argument("--n", type=int, default=d.n, help="N, or the first N of the curriculum (default: 2)")
    g.add_argument("--mode", default=d.mode, help="final (the paper) or every_step (default: final)")
    g.add_argument("--p", type=_p, default=None, help="bit probability: a float or 'uniform' (default: the env's)")
    g.add_argument("--length-range", type=int, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="episode lengths in [LOW, HIGH) (default: the paper's for the largest N)")
    g.add_argument("--curriculum", default=None, help="single or multi (default: none, a fixed N)")
    g.add_argument("--n-max", type=int, default=None, help="last N of the curriculum (required with one)")
    g.add_argument("--threshold", type=float, default=d.threshold,
                   help="advance / solved when the mean and newest head accuracy exceed this (default: 0.98)")
    g.add_argument("--window", type=int, default=d.window,
                   help="training episodes per N that the curriculum averages (default: 100)")
    g = parser.add_argument_group("policy")
    g.add_argument("--core", default=d.core, help=f"recurrent core: {', '.join(CORES)} (default: {d.core})")
    g.add_argument("--hidden-size", type=int, default=d.hidden_size, help=f"units (default: {d.hidden_size})")
    g.add_argument("--tau-init", type=float, nargs=2, default=list(d.tau_init), metavar=("LOW", "HIGH"),
                   help="initial tau ~ U(LOW, HIGH) (default: 1 2)")
    g.add_argument("--fixed-tau", action="store_true", help="do not train tau")
    g = parser.add_argument_group("PPO")
    g.add_argument("--n-envs", type=int, default=d.n_envs, help=f"parallel envs (default: {d.n_envs})")
    g.add_argument("--n-steps", type=int, default=d.n_steps, help=f"rollout steps per env (default: {d.n_steps})")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default: {d.batch_size}")
    g.add_argument("--n-epochs", type=int, default=d.n_epochs, help=f"default: {d.n_epochs}")
    g.add_argument("--lr", type=float, default=None, help="learning rate (default: 3e-3 leaky, 1e-2 gru/lstm)")
    g.add_argument("--gamma", type=float, default=d.gamma, help=f"discount (default: {d.gamma})")
    g.add_argument("--ent-coef", type=float, default=d.ent_coef, help=f"entropy bonus (default: {d.ent_coef})")
    g = parser.add_argument_group("budget, evaluation and run")
    g.add_argument("--total-timesteps", type=int, default=d.total_timesteps, help=f"default: {d.total_timesteps}")
    g.add_argument("--max-seconds", type=float, default=None, help="wall-time budget (default: none)")
    g.add_argument("--eval-every", type=int, default=d.eval_every, help=f"timesteps between evaluations (default: {d.eval_every})")
    g.add_argument("--eval-episodes", type=int, default=d.eval_episodes, help=f"episodes per evaluation (default: {d.eval_episodes})")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of the envs, the policy and PPO (default: 0)")
    g.add_argument("--device", default=d.device, help="cpu, cuda[:i] or auto (default: cpu)")
    g.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--run-dir", default=None, help="run folder (default: runs/rl-<env>-n<N>-<core>-s<seed>)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in the run folder from its last saved state (the same options; "
                        "--total-timesteps, --max-seconds and --device may change); a finished run prints its summary")
    g.add_argument("--overwrite", action="store_true", help="replace a non-empty run folder")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_rl)
    return parser


def rl_config_from_args(args: argparse.Namespace) -> RLConfig:
    return RLConfig(
        env_id=args.env, n=args.n, mode=args.mode, p=args.p,
        length_range=None if args.length_range is None else tuple(args.length_range),
        curriculum=args.curriculum, n_max=args.n_max, threshold=args.threshold, window=args.window,
        core=args.core, hidden_size=args.hidden_size, tau_init=tuple(args.tau_init), train_tau=not args.fixed_tau,
        n_envs=args.n_envs, n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
        lr=args.lr, gamma=args.gamma, ent_coef=args.ent_coef, total_timesteps=args.total_timesteps,
        max_seconds=args.max_seconds, eval_every=args.eval_every, eval_episodes=args.eval_episodes,
        seed=args.seed, device=args.device,
    )


def default_rl_run_dir(config: RLConfig) -> str:
    cur = f"-{config.curriculum}" if config.curriculum else ""
    return f"runs/rl-{config.env_id}-n{config.n}{cur}-{config.core}-h{config.hidden_size}-s{config.seed}"


def format_rl_summary(summary: dict[str, Any]) -> str:
    ev = summary["final_eval"] or {}
    acc = ", ".join(f"N={n}: {a:.3f}" for n, a in ev.get("accuracy", {}).items())
    return (f"largest N solved: {summary['max_n']}  ({summary['env_id']}, curriculum: {summary['curriculum']}, "
            f"{summary['core']} core, {summary['hidden_size']} units)\n"
            f"timesteps: {summary['timesteps']}  time: {summary['seconds']:.0f} s  "
            f"stopped because: {summary['stopped_because']}\n"
            f"final evaluation: mean return {ev.get('mean_return', float('nan')):.3f}, "
            f"success rate {ev.get('success_rate', float('nan')):.3f}, accuracy {acc}")


def cmd_rl(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        import sb3_contrib  # noqa: F401
    except ImportError:
        print("memory-envs: error: the rl command needs sb3-contrib: pip install 'memory-envs[rl]'", file=sys.stderr)
        return 2
    try:
        config = rl_config_from_args(args)
        run_dir = args.run_dir or default_rl_run_dir(config)
        run = RLRun(config, run_dir, resume=args.resume, overwrite=args.overwrite)
    except (ValueError, TypeError) as error:  # bad options or an unusable run folder: no traceback
        print(f"memory-envs: error: {error}", file=sys.stderr)
        return 2
    summary = run.run(progress=not args.quiet)
    print(format_rl_summary(summary))
    print(f"run folder: {run_dir}")
    return 0


__all__ = ["RLConfig", "RLRun", "add_rl_parser", "cmd_rl",
           "evaluate_policy", "train_rl"]
