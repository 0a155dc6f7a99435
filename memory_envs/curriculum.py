"""Curricula over N: the schedules of the paper and wrappers that apply them to the envs; and running
parity's schedule over lengths (:class:`LengthCurriculum`), for the supervised trainer.

A schedule's state is the list of active Ns. :meth:`Curriculum.update` takes the per-head
accuracy of the latest evaluation and advances by the paper's rule: the mean accuracy over
the active heads and the accuracy of the newest head both exceed ``threshold`` (0.98).

* ``single``: [N] -> [N + 1]; one readout reused for every N.
* ``multi`` (the paper's cumulative curriculum): [start..N] -> [start..N + 1]; one head per N.
* ``sliding``: like ``multi``, but once more than ``window`` heads are active the oldest
  ``drop`` are dropped.

The same schedule objects drive the supervised trainer and the RL wrappers below:
:class:`CurriculumWrapper` (one env, or several in one process sharing a tracker),
:class:`VectorCurriculumWrapper` (the native vector env) and, for envs in other processes
(SB3's ``SubprocVecEnv``, Gymnasium's ``AsyncVectorEnv``), :class:`EpisodeResultsWrapper` in
each env with a :class:`CurriculumDriver` on the training side.
"""

from __future__ import annotations

import collections
import numbers
from typing import Any, Iterator, Mapping, Sequence

import gymnasium as gym
import numpy as np

from memory_envs import tasks
from memory_envs.envs import pad_ns

KINDS: tuple[str, ...] = ("single", "multi", "sliding")


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_threshold(threshold: Any) -> float:
    """The advance (or "solved") threshold: a real number in (0, 1), as a float; ValueError naming ``threshold``."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a float in (0, 1), got {threshold!r}")
    return float(threshold)


def check_accuracy(value: Any, name: str) -> float:
    """An accuracy: a real number in [0, 1] (bools, strings and nan refused), as a float; ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be an accuracy, a real number in [0, 1], got {value!r}")
    return float(value)


class Curriculum:
    """A schedule of active Ns with the paper's advance rule.

    Args:
        kind: ``"single"``, ``"multi"`` or ``"sliding"``.
        start: the first N (default 2, the smallest N of DMS).
        n_max: the last N; reaching it and passing the rule sets :attr:`finished`. None: unbounded.
        threshold: accuracy that the mean over active heads and the newest head must exceed.
        window: heads kept by ``"sliding"``.
        drop: heads dropped at once by ``"sliding"`` when it exceeds ``window``.
    """

    def __init__(
        self,
        kind: str = "multi",
        start: int = 2,
        n_max: int | None = None,
        threshold: float = 0.98,
        window: int = 5,
        drop: int = 1,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.start = _positive_int(start, "start")
        self.n_max = None if n_max is None else _positive_int(n_max, "n_max", self.start)
        self.threshold = check_threshold(threshold)
        self.window = _positive_int(window, "window")
        self.drop = _positive_int(drop, "drop")
        if self.drop > self.window:
            raise ValueError(f"drop must be <= window ({self.window}), got {self.drop}")
        self.ns: list[int] = [self.start]
        self.solved: int | None = None
        """The largest N whose head has passed the rule as the newest head."""
        self.finished = False
        self.advances = 0

    @property
    def newest(self) -> int:
        return self.ns[-1]

    @property
    def max_heads(self) -> int | None:
        """The most heads this schedule will ever score at once (None if unbounded)."""
        if self.kind == "single":
            return 1
        if self.kind == "sliding":
            return self.window
        return None if self.n_max is None else self.n_max - self.start + 1

    def check_task(self, task: str) -> None:
        """Raise if this schedule's Ns are not valid for ``task`` (e.g. start 1 with DMS)."""
        tasks.check_ns(task, self.start, argument="start")

    def passes(self, accuracy: Mapping[int, float]) -> bool:
        """The paper's rule on the per-N ``accuracy`` of the active heads."""
        missing = [n for n in self.ns if n not in accuracy]
        if missing:
            raise ValueError(f"accuracy is missing the active Ns {missing} (active: {self.ns})")
        values = {n: check_accuracy(accuracy[n], f"accuracy[{n}]") for n in self.ns}
        mean = float(np.mean(list(values.values())))
        return mean > self.threshold and values[self.newest] > self.threshold

    def update(self, accuracy: Mapping[int, float]) -> bool:
        """Advance if ``accuracy`` passes the rule; returns True if the active Ns changed."""
        if self.finished or not self.passes(accuracy):
            return False
        self.solved = self.newest
        if self.n_max is not None and self.newest >= self.n_max:
            self.finished = True
            return False
        nxt = self.newest + 1
        if self.kind == "single":
            self.ns = [nxt]
        else:
            self.ns = self.ns + [nxt]
            if self.kind == "sliding" and len(self.ns) > self.window:
                self.ns = self.ns[self.drop :]
        self.advances += 1
        return True

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this schedule (JSON-serializable)."""
        return {
            "kind": self.kind,
            "start": self.start,
            "n_max": self.n_max,
            "threshold": self.threshold,
            "window": self.window,
            "drop": self.drop,
            "ns": list(self.ns),
            "solved": self.solved,
            "finished": self.finished,
            "advances": self.advances,
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "Curriculum":
        curriculum = cls(
            state["kind"], state["start"], state["n_max"], state["threshold"], state["window"], state["drop"]
        )
        curriculum.ns = [int(n) for n in state["ns"]]
        curriculum.solved = state["solved"]
        curriculum.finished = bool(state["finished"])
        curriculum.advances = int(state["advances"])
        return curriculum

    def __repr__(self) -> str:
        return f"Curriculum(kind={self.kind!r}, ns={self.ns}, solved={self.solved}, finished={self.finished})"


LENGTH_KINDS: tuple[str, ...] = ("none", "length")
"""Running parity's schedules (it has no N): fixed training lengths, or a curriculum over lengths."""


class LengthCurriculum:
    """Running parity's schedule over trial lengths, with the interface the supervised trainer drives.

    Running parity has no N: its one head is N = 0 (``ns == [0]``) and what grows, if anything, is the
    longest training length.

    * ``none`` (the protocol's): every batch draws its length from the whole ``length_range``.
    * ``length``: lengths are drawn from [low, longest], ``longest`` starting at min(2 low, high - 1) and
      doubling (capped at high - 1) each time :meth:`update`'s accuracy at the current lengths exceeds
      ``threshold``.

    :attr:`solved` is the longest length that passed the rule (None before, and always with ``none``);
    :attr:`finished` stays False, so a run trains for its whole budget as the protocol does.
    """

    def __init__(self, kind: str = "none", length_range: Sequence[int] | None = None, threshold: float = 0.98) -> None:
        if kind not in LENGTH_KINDS:
            raise ValueError(f"curriculum must be one of {LENGTH_KINDS} for task 'running_parity', got {kind!r}")
        self.kind = kind
        self.length_range = tasks.check_running_lengths(length_range)
        self.threshold = check_threshold(threshold)
        low, high = self.length_range
        self.longest = high - 1 if kind == "none" else min(2 * low, high - 1)
        self.ns: list[int] = [tasks.RUNNING_N]
        self.solved: int | None = None
        self.finished = False
        self.advances = 0

    @property
    def lengths(self) -> tuple[int, int]:
        """The half-open range the next training batch draws its length from."""
        return (self.length_range[0], self.longest + 1)

    def update(self, accuracy: Mapping[int, float]) -> bool:
        """With ``length``: record a pass of the rule at the current lengths and double the longest length;
        returns True if the training lengths changed."""
        if self.kind == "none" or check_accuracy(accuracy[tasks.RUNNING_N], f"accuracy[{tasks.RUNNING_N}]") <= self.threshold:
            return False
        self.solved = self.longest
        longest = min(2 * self.longest, self.length_range[1] - 1)
        if longest == self.longest:
            return False
        self.longest = longest
        self.advances += 1
        return True

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this schedule (JSON-serializable)."""
        return {"kind": self.kind, "length_range": list(self.length_range), "threshold": self.threshold,
                "longest": self.longest, "solved": self.solved, "advances": self.advances}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "LengthCurriculum":
        curriculum = cls(state["kind"], state["length_range"], state["threshold"])
        curriculum.longest, curriculum.solved = int(state["longest"]), state["solved"]
        curriculum.advances = int(state["advances"])
        return curriculum


class EpisodeAccuracyTracker:
    """Per-N accuracy over the last ``window`` finished episodes, feeding a :class:`Curriculum`.

    Once every active N has ``window`` episodes, :meth:`maybe_advance` asks the curriculum
    to update, clears the history when it advances and sets the new Ns on every attached env
    (so one tracker can drive several envs, e.g. all envs of an SB3 VecEnv).
    """

    def __init__(self, curriculum: Curriculum, window: int = 100) -> None:
        self.curriculum = curriculum
        self.window = _positive_int(window, "window")
        self.history: dict[int, collections.deque] = {}
        self.envs: list[Any] = []

    def attach(self, env: Any) -> None:
        """Let this tracker set the Ns of ``env`` (a single or native vector memory-task env)."""
        config = env.unwrapped.config
        _check_env_fits(config, self.curriculum)
        env.unwrapped.set_ns(self.curriculum.ns)
        self.envs.append(env)

    def record(self, ns: Sequence[int], head_accuracy: Sequence[float]) -> None:
        """Record one finished episode that scored ``ns`` with per-head ``head_accuracy``."""
        for n, acc in zip(ns, head_accuracy):
            if n > 0 and n in self.curriculum.ns:
                self.history.setdefault(int(n), collections.deque(maxlen=self.window)).append(float(acc))

    def maybe_advance(self) -> bool:
        """Update the curriculum once every active N has a full window; True if it advanced."""
        if any(len(self.history.get(n, ())) < self.window for n in self.curriculum.ns):
            return False
        advanced = self.curriculum.update({n: float(np.mean(self.history[n])) for n in self.curriculum.ns})
        if advanced:
            self.history.clear()
            for env in self.envs:
                env.unwrapped.set_ns(self.curriculum.ns)
        return advanced

    def state_dict(self) -> dict[str, list[float]]:
        """The episode windows, keys str(N) (JSON-able), so a resumed run keeps its progress toward an advance."""
        return {str(n): list(acc) for n, acc in self.history.items()}

    def load_state_dict(self, state: Mapping[str, Sequence[float]]) -> None:
        """Restore windows saved by :meth:`state_dict`; restore the curriculum first (every N must be active).

        Raises ValueError naming what does not fit, and then leaves the tracker as it was.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"tracker state must be a mapping of str(N) to accuracies, got {type(state).__name__}")
        history: dict[int, collections.deque] = {}
        for key, accuracies in state.items():
            if not (isinstance(key, str) and key.isascii() and key.isdigit()):
                raise ValueError(f"tracker state keys must be str(N), got {key!r}")
            n = int(key)
            if n not in self.curriculum.ns:
                raise ValueError(f"tracker state has N={n}, not an active N of the curriculum {self.curriculum.ns}")
            if isinstance(accuracies, (str, bytes)) or not isinstance(accuracies, Sequence):
                raise ValueError(f"tracker state for N={n} must be a list of accuracies, got {accuracies!r}")
            if len(accuracies) > self.window:
                raise ValueError(f"tracker state for N={n} has {len(accuracies)} episodes, more than the window "
                                 f"({self.window})")
            for acc in accuracies:
                check_accuracy(acc, f"tracker state for N={n}: each")
            history[n] = collections.deque((float(acc) for acc in accuracies), maxlen=self.window)
        self.history = history


def _check_env_fits(config: Any, curriculum: Curriculum) -> None:
    curriculum.check_task(config.task)
    max_heads = curriculum.max_heads
    if max_heads is None:
        raise ValueError("an RL curriculum needs n_max for a multi-head schedule (the action space is fixed)")
    if curriculum.kind == "single" and config.multi_head:
        raise ValueError("a single-head curriculum needs an env made with n= (Discrete action)")
    if curriculum.kind != "single" and config.max_heads < max_heads:
        raise ValueError(
            f"the env's action space holds {config.max_heads} heads but the curriculum needs "
            f"max_heads={max_heads}: make the env with heads=..., max_heads={max_heads}"
        )


def _tracker(curriculum: Curriculum | EpisodeAccuracyTracker, window: int) -> EpisodeAccuracyTracker:
    if isinstance(curriculum, EpisodeAccuracyTracker):
        return curriculum
    if not isinstance(curriculum, Curriculum):
        raise TypeError(f"curriculum must be a Curriculum or an EpisodeAccuracyTracker, got {type(curriculum).__name__}")
    return EpisodeAccuracyTracker(curriculum, window)


class CurriculumWrapper(gym.Wrapper):
    """Advance a single env's Ns between episodes by a :class:`Curriculum`.

    The env must be made with an action space for the curriculum's largest number of heads
    (``max_heads=curriculum.max_heads``). Finished episodes' ``head_accuracy`` are tracked over
    ``window`` episodes; the new Ns take effect at the next reset. ``info["curriculum_ns"]``
    reports the curriculum's active Ns (int64 [max_heads], 0 in unused entries, like ``info["ns"]``).
    Pass one :class:`EpisodeAccuracyTracker` instead of a curriculum to several wrappers to drive
    several envs of one process by one curriculum (their episodes pooled); for envs in other
    processes use :class:`CurriculumDriver`.
    """

    def __init__(self, env: gym.Env, curriculum: Curriculum | EpisodeAccuracyTracker, window: int = 100) -> None:
        super().__init__(env)
        self.tracker = _tracker(curriculum, window)
        self.tracker.attach(env)

    @property
    def curriculum(self) -> Curriculum:
        return self.tracker.curriculum

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated:
            self.tracker.record(info["ns"], info["head_accuracy"])
            self.tracker.maybe_advance()
        info["curriculum_ns"] = pad_ns(self.curriculum.ns, self.env.unwrapped.config.max_heads)
        return obs, reward, terminated, truncated, info


class VectorCurriculumWrapper(gym.vector.VectorWrapper):
    """Advance a native vector env's Ns by a :class:`Curriculum` (see :class:`CurriculumWrapper`)."""

    def __init__(self, env: gym.vector.VectorEnv, curriculum: Curriculum | EpisodeAccuracyTracker,
                 window: int = 100) -> None:
        super().__init__(env)
        self.tracker = _tracker(curriculum, window)
        self.tracker.attach(env)

    @property
    def curriculum(self) -> Curriculum:
        return self.tracker.curriculum

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict]:
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        finished = False
        for ns, accuracy in finished_episodes(info, terminated | truncated):
            self.tracker.record(ns, accuracy)
            finished = True
        if finished:
            self.tracker.maybe_advance()
        return obs, rewards, terminated, truncated, info


def finished_episodes(info: Mapping[str, Any], ended: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(ns, head_accuracy)`` of every episode that ended in a vector env's step.

    Reads ``info["final_info"]`` in ``SAME_STEP`` autoreset mode (where the top-level info is
    already the next episode's reset info) and ``info`` otherwise.
    """
    if "final_info" in info:
        info, ended = info["final_info"], info["_final_info"]
    for i in np.flatnonzero(ended):
        yield info["ns"][i], info["head_accuracy"][i]


class EpisodeResultsWrapper(gym.Wrapper):
    """Keep each finished episode's ``(ns, head_accuracy)`` until the training side collects them.

    For envs in other processes: wrap each env (inside the worker) and let a
    :class:`CurriculumDriver` collect the results with ``call``/``env_method`` and set the Ns.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._results: list[tuple[list[int], list[float]]] = []

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self._results.append((info["ns"].tolist(), info["head_accuracy"].tolist()))
        return obs, reward, terminated, truncated, info

    def pop_episode_results(self) -> list[tuple[list[int], list[float]]]:
        """The ``(ns, head_accuracy)`` of the episodes finished since the last call (plain lists)."""
        results, self._results = self._results, []
        return results


class CurriculumDriver:
    """Drive one curriculum over envs that run in other processes, from the training side.

    ``venv`` is an SB3 ``VecEnv`` (e.g. ``SubprocVecEnv``; uses ``env_method``/``get_attr``) or a
    Gymnasium ``VectorEnv`` of single envs (e.g. ``AsyncVectorEnv``; uses ``call``/``get_attr``)
    whose envs are each wrapped in :class:`EpisodeResultsWrapper`. Call :meth:`update` from the
    training loop (e.g. after every rollout): it collects the episodes finished in every env,
    feeds them one by one to the tracker (the paper's rule over the last ``window`` episodes per
    N) and, when the curriculum advances, sets the new Ns in every env (from its next reset on).
    """

    def __init__(self, venv: Any, curriculum: Curriculum | EpisodeAccuracyTracker, window: int = 100) -> None:
        self.venv = venv
        self.tracker = _tracker(curriculum, window)
        for config in venv.get_attr("config"):
            _check_env_fits(config, self.curriculum)
        try:
            self._call("pop_episode_results")
        except AttributeError:
            raise ValueError(
                "CurriculumDriver needs every env wrapped in memory_envs.EpisodeResultsWrapper "
                "(it keeps the finished episodes until update() collects them)"
            ) from None
        self._call("set_ns", list(self.curriculum.ns))

    @property
    def curriculum(self) -> Curriculum:
        return self.tracker.curriculum

    def _call(self, name: str, *args: Any) -> list[Any]:
        if hasattr(self.venv, "env_method"):  # SB3
            return list(self.venv.env_method(name, *args))
        return list(self.venv.call(name, *args))  # Gymnasium

    def update(self) -> bool:
        """Collect the finished episodes of every env and apply the rule; True if the Ns changed."""
        advanced = False
        for results in self._call("pop_episode_results"):
            for ns, accuracy in results:
                self.tracker.record(ns, accuracy)
                advanced |= self.tracker.maybe_advance()
        if advanced:
            self._call("set_ns", list(self.curriculum.ns))
        return advanced
