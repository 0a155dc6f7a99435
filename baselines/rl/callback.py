"""The SB3 callback of an RL run: evaluation schedule (:func:`evaluate_policy`), metrics lines, early
stop, budgets, and the resume state written to ``last/`` (with the global RNG states it holds)."""

from __future__ import annotations

import io
import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import gymnasium as gym
import numpy as np
import torch

from agents.checkpoint import FORMAT_VERSION, atomic_write
from baselines import interrupt
from baselines.resume_state import write_state
from baselines.run_folder import append_metrics, atomic_write_text, save_last

if TYPE_CHECKING:
    from baselines.rl.run import RLRun


def evaluate_policy(model: Any, env: gym.Env, episodes: int, seed: int, ns: Sequence[int]) -> dict[str, Any]:
    """Run ``episodes`` episodes of ``env`` scoring ``ns`` with deterministic actions (a stop request abandons
    it between two episodes: :func:`baselines.interrupt.check`).

    Returns mean_return, success_rate and accuracy (mean head_accuracy per N, keys are str(N)).
    """
    if tuple(ns) != tuple(env.unwrapped.ns):  # a token task has no N to set
        env.unwrapped.set_ns(ns)
    returns, successes, accuracies = [], [], []
    for episode in range(episodes):
        interrupt.check()
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
        k = len(ns)  # info arrays hold max_heads entries: the active heads come first
        accuracies.append(np.asarray(info["head_accuracy"][:k], dtype=float))
    acc = np.mean(accuracies, axis=0)
    return {"mean_return": float(np.mean(returns)), "success_rate": float(np.mean(successes)),
            "accuracy": {str(n): float(a) for n, a in zip(info["ns"][:k].tolist(), acc)}}


def save_model(model: Any, path: Path) -> None:
    """``RecurrentPPO.save`` to ``path`` through :func:`agents.checkpoint.atomic_write` (never through a link;
    a full disk is one WriteError line)."""
    buffer = io.BytesIO()
    model.save(buffer)
    atomic_write(path, buffer.getvalue())


def rng_state(cuda: bool) -> dict[str, Any]:
    """The global RNG states a run draws from: torch (sampled actions), numpy (minibatch order), Python."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if cuda:
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def check_rng_state(state: dict[str, Any]) -> None:
    """Raise (KeyError, TypeError, ValueError, RuntimeError) if ``state`` is not what :func:`rng_state` returns,
    without touching the global RNGs."""
    torch.Generator().set_state(state["torch"])
    np.random.RandomState().set_state(state["numpy"])
    random.Random().setstate(state["python"])
    if "cuda" in state and not (isinstance(state["cuda"], list)
                                and all(isinstance(s, torch.Tensor) for s in state["cuda"])):
        raise TypeError("cuda must be a list of RNG state tensors")


def set_rng_state(state: dict[str, Any], cuda: bool) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if cuda and "cuda" in state:  # a state saved on the CPU leaves CUDA as RecurrentPPO.load seeded it
        torch.cuda.set_rng_state_all(state["cuda"])


class _RunCallbackMixin:
    """Evaluation every ``eval_every`` timesteps, metrics, early stop, budgets, resume state and progress
    reports (``on_progress(timesteps)`` after every step, ``on_eval(metrics line)`` after every evaluation).

    Mixed into SB3's BaseCallback by :func:`make_callback` (SB3 is imported only when a run starts,
    so that ``baselines.rl`` imports without the ``rl`` extra). A resumed run starts from
    ``run.state``.
    """

    def __init__(self, run: RLRun, on_progress: Callable[[int], None] | None,
                 on_eval: Callable[[dict[str, Any]], None] | None) -> None:
        super().__init__()  # type: ignore[call-arg]
        self.run = run
        self.on_progress = on_progress
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
        self.message: str | None = None
        """Why the run stopped early, when that needs saying (a non-finite policy)."""
        self.state_due = False
        """An evaluation ran since the last saved state: save one at the next rollout boundary."""
        self.eval_pending: bool = state.get("eval_pending", False)
        """A stop request abandoned the evaluation due at this timestep: a resume runs it first."""

    def _on_training_start(self) -> None:
        self.started = time.perf_counter() - self.seconds
        self.eval_env = self.run._make_env()
        if self.run.last is None:  # a saved state before the first metrics line: a resume always has one
            self._save_state()
        if self.eval_pending:
            self._stoppable_evaluate()

    def _target_reached(self) -> bool:
        cur = self.run.curriculum
        return cur.finished if cur is not None else self.fixed_solved

    def stop_reason(self) -> str | None:
        """``"interrupted"`` (a SIGINT or SIGTERM, :mod:`baselines.interrupt`), ``"target_reached"`` or
        ``"max_seconds"`` if the run must stop now, else None (the timestep budget is ``learn``'s: it ends
        after training on the last rollout)."""
        if interrupt.requested():
            return "interrupted"
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

    def non_finite(self) -> str | None:
        """The name of a policy parameter holding NaN or inf, or None."""
        for name, param in self.model.policy.named_parameters():
            if not bool(torch.isfinite(param).all()):
                return name
        return None

    def stop_non_finite(self, what: str) -> None:
        """Stop the run because ``what`` (a parameter's name) is no longer finite (the summary's ``message`` says so)."""
        self.stopped_because = "non_finite"
        self.message = (f"{what} became non-finite by timestep {self.num_timesteps}; the run stopped (last/ keeps the "
                        "last finite state). Lower lr.")

    def _stoppable_evaluate(self) -> bool:
        """:meth:`_evaluate`; False if a stop request abandoned it (nothing written; the run stops as
        ``"interrupted"`` and its saved state makes a resume evaluate first)."""
        try:
            self._evaluate()
        except interrupt.Interrupted:
            self.eval_pending, self.stopped_because = True, "interrupted"
            return False
        self.eval_pending = False
        return True

    def _evaluate(self) -> dict[str, Any]:
        c = self.run.config
        ns = self.run.ns
        result = evaluate_policy(self.model, self.eval_env, c.eval_episodes, c.eval_seed, ns)
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
        if self.on_eval is not None:
            self.on_eval(line)
        return line

    def _save_state(self) -> None:
        """Write the resume state to ``last.new/`` and swap it in as ``last/``."""
        run = self.run
        self.seconds = time.perf_counter() - self.started
        state = {
            "format_version": FORMAT_VERSION,  # of the cores' weights in model.zip (agents.checkpoint)
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
            "eval_pending": self.eval_pending,
        }

        def write(folder: Path) -> None:
            save_model(self.model, folder / "model.zip")
            write_state(folder, "rng", rng_state(self.model.device.type == "cuda"))
            atomic_write_text(folder / "state.json", json.dumps(state, indent=2))

        save_last(run.run_dir, write)
        self.state_due = False

    def _on_rollout_start(self) -> None:
        # PPO has trained on the previous rollout: a state saved now counts only trained-on timesteps.
        if self.state_due and self.message is None:
            self._save_state()

    def _on_step(self) -> bool:
        c = self.run.config
        if self.run.driver is not None and np.any(self.locals["dones"]):
            self.run.driver.update()  # the episodes that just ended, from every training env
        self._note_solved()
        if self.on_progress is not None:
            self.on_progress(int(self.num_timesteps))
        if self.num_timesteps >= self.next_eval:
            while self.next_eval <= self.num_timesteps:
                self.next_eval += c.eval_every
            bad = self.non_finite()
            if bad is not None:
                self.stop_non_finite(f"policy parameter {bad}")
                return False
            if not self._stoppable_evaluate():
                return False
        self.seconds = time.perf_counter() - self.started
        reason = self.stop_reason()
        if reason is not None:
            self.stopped_because = reason
            return False
        return True

    def finish(self) -> None:
        """The final evaluation (unless one just ran at this timestep, or the run was interrupted: it stops
        at once), the final resume state; closes the evaluation env."""
        self._note_solved()
        if self.message is not None:  # non-finite: no evaluation, and last/ keeps the last finite state
            self.eval_env.close()
            return
        if (self.last_eval_timesteps != self.num_timesteps and self.stopped_because != "interrupted"
                and self._stoppable_evaluate()):
            if self._target_reached() and self.stopped_because != "max_seconds":
                self.stopped_because = "target_reached"
        self._save_state()
        if self.on_progress is not None:
            self.on_progress(int(self.num_timesteps))
        self.eval_env.close()


def make_callback(run: RLRun, on_progress: Callable[[int], None] | None,
                  on_eval: Callable[[dict[str, Any]], None] | None) -> Any:
    """The run's SB3 callback (SB3 is imported here, when a run starts)."""
    from stable_baselines3.common.callbacks import BaseCallback

    cls = type("_RunCallback", (_RunCallbackMixin, BaseCallback), {})
    return cls(run, on_progress, on_eval)
