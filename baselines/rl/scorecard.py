"""RL score card: how RecurrentPPO with each policy does on the presets, beside the supervised score card.

For every preset x policy x seed, one ``memory-envs rl`` run (:func:`baselines.rl.train_rl`, its own run
folder under ``out/runs``) with the same PPO hyperparameters and budget: sb3-contrib's RecurrentPPO with
its stock ``MlpLstmPolicy`` (policy ``stock-lstm``) or :class:`agents.RecurrentCorePolicy` with one of
our cores (any kind of ``agents.cores.KINDS``), on the native vector env (:func:`memory_envs.make_sb3_vec_env`).
Each run is one unit of work of :mod:`baselines.backends` (local processes by default, or Ray tasks);
a run with ``rlcard.json`` is finished and never redone, an unfinished one resumes from its last saved
state, so re-running the same command after a kill continues the card.

The score is the **normalized return** on the run's evaluation episodes (the same seeded episodes at
every evaluation, :attr:`RLConfig.eval_seed`): 0 for a uniformly random policy and 1 for the oracle
(:class:`memory_envs.OraclePolicy`, the tasks' own labels), both measured on exactly those episodes
(:func:`reference`), so normalized = (R - R_random) / (R_oracle - R_random) is exact, not assumed. A
reference whose oracle and random returns are equal is refused before anything is written.

With ``curriculum="multi"`` a run trains through the multi-head curriculum [2] -> [2, 3] -> ... up to
the preset's N on the base id (p = 0.5, final scoring, SB3's DummyVecEnv: the native vector env has no
curriculum driver), and is scored on its head for N: in the presets' final scoring a head's accuracy
on an episode is that episode's return for that N, and with N active the evaluation env draws the
preset's episodes, so the same reference applies. An evaluation before N is active has no score.

Score card (``rl_scorecard.csv`` / ``rl_scorecard.md``), one row per preset x policy: the median and
range over seeds of the final normalized return, the median success rate and per-head accuracy, the
median timesteps at which an evaluation first reached normalized 0.5 / 0.9 (with how many seeds did),
and the median training timesteps per second (evaluations included); ``normalized_over_timesteps.png``
plots every run's evaluations.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from baselines.backends import BackendConfig, Unit, UnitsFailed, run_units
from baselines.rl.callback import evaluate_policy
from baselines.rl.config import POLICY_CORES, PPO_ENT_COEF, PPO_LR, STOCK_LSTM, RLConfig
from baselines.run_folder import make_output_folder, read_json, read_metrics, write_csv
from baselines.trainer import atomic_write_text
from memory_envs import DIFFICULTIES, ENV_IDS, PRESETS, OraclePolicy
from memory_envs import presets as preset_ids
from memory_envs import tasks

SPEC_FILE = "rl_benchmark.json"
CARD_FILE = "rlcard.json"
"""Written into a run folder once its run is finished and scored: the card's marker of a done run."""
SUPERVISED_SPEC_FILE = "benchmark.json"
LEVELS = (0.5, 0.9)
"""The normalized returns whose first timestep the card reports."""
CURRICULA = ("multi",)
RANDOM_STREAM = 7
"""The random policy of a reference draws from ``np.random.default_rng([eval_seed, RANDOM_STREAM])``."""
RANDOM_REPEATS = 10
"""Times the random policy plays the evaluation episodes for a reference (its mean return over them all):
the reference's own sampling noise is then sqrt(10) times smaller than one play's."""


@dataclass(frozen=True)
class RLScorecardSpec:
    """What to compare and the budget and PPO hyperparameters of every run (the same for all)."""

    presets: tuple[str, ...] = ("NParity-Easy-v0", "NDMS-Easy-v0")
    policies: tuple[str, ...] = (STOCK_LSTM, "leaky", "gru", "lstm")
    seeds: tuple[int, ...] = (0, 1)
    timesteps: int = 100_000
    curriculum: str | None = None
    """None (train at the preset's N) or ``"multi"`` (the multi-head curriculum up to it)."""
    hidden_size: int = 32
    n_envs: int = 8
    n_steps: int = 64
    batch_size: int = 128
    n_epochs: int = 4
    lr: float = PPO_LR
    gamma: float = 0.99
    ent_coef: float = PPO_ENT_COEF
    eval_every: int = 10_000
    eval_episodes: int = 200
    max_seconds: float | None = None
    """A wall-time cap per run (None: the timestep budget alone)."""
    workers: int = 2
    device: str = "cpu"

    BUDGET = ("timesteps", "curriculum", "hidden_size", "n_envs", "n_steps", "batch_size", "n_epochs", "lr", "gamma",
              "ent_coef", "eval_every", "eval_episodes", "max_seconds")
    """The fields that must match a card already in the output folder (the others may grow or change)."""

    def validate(self) -> "RLScorecardSpec":
        """Check every choice and the budget before anything is written (raises ValueError naming the field)."""
        for name in ("presets", "policies", "seeds"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must not be empty")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must not repeat, got {list(values)}")
        for preset in self.presets:
            if preset not in PRESETS:
                raise ValueError(f"presets must be preset ids {list(PRESETS)} (or difficulties {DIFFICULTIES}), "
                                 f"got {preset!r}")
        for policy in self.policies:
            if policy not in POLICY_CORES:
                raise ValueError(f"policies must be {STOCK_LSTM} or core kinds {POLICY_CORES[:-1]}, got {policy!r}")
        if self.curriculum is not None and self.curriculum not in CURRICULA:
            raise ValueError(f"curriculum must be None or one of {CURRICULA}, got {self.curriculum!r}")
        for name in ("timesteps", "hidden_size", "n_envs", "n_steps", "batch_size", "n_epochs", "eval_every",
                     "eval_episodes", "workers"):  # here, so that errors name the card's fields, not RLConfig's
            tasks.check_positive_int(getattr(self, name), name)
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):  # RLConfig takes None (its defaults): not here
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        for preset in self.presets:
            for policy in self.policies:
                self.config(preset, policy, self.seeds[0]).validate()
        for seed in self.seeds:
            self.config(self.presets[0], self.policies[0], seed).validate()
        return self

    def config(self, preset: str, policy: str, seed: int) -> RLConfig:
        """The ``memory-envs rl`` config of one run."""
        n = PRESETS[preset].n
        common = dict(core=policy, hidden_size=self.hidden_size, n_envs=self.n_envs, n_steps=self.n_steps,
                      batch_size=self.batch_size, n_epochs=self.n_epochs, lr=self.lr, gamma=self.gamma,
                      ent_coef=self.ent_coef, total_timesteps=self.timesteps, max_seconds=self.max_seconds,
                      eval_every=self.eval_every, eval_episodes=self.eval_episodes, seed=seed, device=self.device)
        if self.curriculum is None:
            return RLConfig(env_id=preset, n=n, vec_env="native", **common)
        start = max(2, tasks.MIN_N[PRESETS[preset].task])
        return RLConfig(env_id=ENV_IDS[PRESETS[preset].task], n=start, n_max=n, curriculum=self.curriculum, p=0.5,
                        mode="final", vec_env="dummy", **common)

    def runs(self) -> list[tuple[str, str, int]]:
        return [(preset, policy, seed) for preset in self.presets for policy in self.policies for seed in self.seeds]

    def run_count(self) -> int:
        """How many runs the card trains (the supervised card's method of the same name)."""
        return len(self.runs())

    def to_json(self) -> dict[str, Any]:
        return {name: (list(value) if isinstance(value, tuple) else value)
                for name, value in self.__dict__.items()}


def expand_presets(names: Sequence[str]) -> tuple[str, ...]:
    """Difficulties (``Easy``: both tasks' Easy presets) and preset ids -> preset ids, in the order given."""
    out: list[str] = []
    for name in names:
        out += preset_ids(name) if name in DIFFICULTIES else [name]
    return tuple(dict.fromkeys(out))


def run_name(preset: str, policy: str, seed: int, curriculum: str | None = None) -> str:
    return f"{preset}-{policy}{'-' + curriculum if curriculum else ''}-s{seed}"


# ----- the reference: oracle and random policy on the evaluation episodes ---------------------------
class _OracleModel:
    """:class:`memory_envs.OraclePolicy` behind RecurrentPPO's ``predict``, for :func:`evaluate_policy`."""

    def __init__(self, env: Any) -> None:
        self.env = env

    def predict(self, obs: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        if episode_start is not None and episode_start[0]:
            self.oracle = OraclePolicy.for_env(self.env)  # the episode's Ns
        return np.asarray([self.oracle(obs[0])]), state


class _RandomModel:
    """A uniformly random policy behind ``predict``, drawing from the generator it is given."""

    def __init__(self, space: Any, rng: np.random.Generator) -> None:
        self.shape = tuple(getattr(space, "nvec", np.array(2)).shape)
        self.rng = rng

    def predict(self, obs: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        return self.rng.integers(0, 2, size=(1, *self.shape)), state


@dataclass(frozen=True)
class Reference:
    """The oracle's and a uniformly random policy's mean return on one preset's evaluation episodes."""

    preset: str
    seed: int
    episodes: int
    oracle: float
    random: float

    def normalize(self, value: float) -> float:
        """(value - random) / (oracle - random): 0 for the random policy, 1 for the oracle."""
        return (value - self.random) / (self.oracle - self.random)


def reference(preset: str, episodes: int, seed: int, rng: np.random.Generator | None = None,
              repeats: int = RANDOM_REPEATS) -> Reference:
    """The oracle and a uniformly random policy (``rng``, default ``default_rng([seed, RANDOM_STREAM])``;
    its mean over ``repeats`` plays) on the ``episodes`` episodes that :func:`evaluate_policy` plays from
    ``seed`` on ``preset``. ValueError if their returns are equal (the normalized return would be undefined)."""
    import gymnasium as gym

    tasks.check_seed(seed)
    env = gym.make(preset)
    n = [PRESETS[preset].n]
    oracle = evaluate_policy(_OracleModel(env), env, episodes, seed, n)["mean_return"]
    rng = np.random.default_rng([seed, RANDOM_STREAM]) if rng is None else rng
    random = float(np.mean([evaluate_policy(_RandomModel(env.action_space, rng), env, episodes, seed, n)["mean_return"]
                            for _ in range(tasks.check_positive_int(repeats, "repeats"))]))
    env.close()
    if oracle == random:
        raise ValueError(f"{preset}: the oracle and the random policy have the same return ({oracle}) on the "
                         f"{episodes} evaluation episodes of seed {seed}: the normalized return is undefined; "
                         "use more eval_episodes")
    return Reference(preset, seed, episodes, oracle, random)


def references(spec: RLScorecardSpec) -> dict[tuple[str, int], Reference]:
    """The reference of every preset x seed of ``spec`` (each seed evaluates on its own episodes)."""
    return {(preset, seed): reference(preset, spec.eval_episodes, spec.config(preset, spec.policies[0], seed).eval_seed)
            for preset in spec.presets for seed in spec.seeds}


# ----- one run: train, then score ---------------------------------------------------------------------
def line_return(line: dict[str, Any] | None, n: int, curriculum: str | None) -> float | None:
    """The return at the preset's N of an evaluation line (the head-N accuracy under a curriculum: the
    return of final scoring); None if N was not evaluated."""
    if line is None:
        return None
    if curriculum is None:
        return float(line["mean_return"])
    value = line["accuracy"].get(str(n))
    return None if value is None else float(value)


def final_evaluation(run_dir: Path, config: RLConfig, summary: dict[str, Any]) -> dict[str, Any] | None:
    """The evaluation the card scores: the run's final one; under a curriculum the final model on every
    head up to N (the curriculum may have stopped short of N), from its model.zip (this run's own)."""
    if config.curriculum is None:
        return summary["final_eval"]
    if not (run_dir / "model.zip").is_file():  # a non-finite policy saves none
        return None
    import gymnasium as gym
    from sb3_contrib import RecurrentPPO

    model = RecurrentPPO.load(run_dir / "model.zip", device=config.device)
    env = gym.make(config.env_id, **config.env_kwargs())
    try:
        return evaluate_policy(model, env, config.eval_episodes, config.eval_seed,
                               list(range(config.n, config.n_max + 1)))
    finally:
        env.close()


def score_run(run_dir: Path, spec: RLScorecardSpec, run: tuple[str, str, int], ref: Reference) -> dict[str, Any]:
    """The card's numbers of one finished run (what ``rlcard.json`` holds)."""
    preset, policy, seed = run
    config = spec.config(*run)
    n = PRESETS[preset].n
    summary = read_json(run_dir / "summary.json")
    curve = []
    for line in read_metrics(run_dir):
        value = line_return(line, n, spec.curriculum)
        curve.append([line["timesteps"], None if value is None else ref.normalize(value)])
    final = final_evaluation(run_dir, config, summary)
    value = line_return(final, n, spec.curriculum)
    reached = {str(level): next((t for t, v in curve if v is not None and v >= level), None) for level in LEVELS}
    return {
        "preset": preset, "policy": policy, "seed": seed, "curriculum": spec.curriculum, "n": n,
        "reference": {"oracle": ref.oracle, "random": ref.random, "episodes": ref.episodes, "seed": ref.seed},
        "return": value, "normalized": None if value is None else ref.normalize(value),
        "success_rate": None if final is None else final["success_rate"],
        "accuracy": {} if final is None else final["accuracy"],
        "curve": curve, "timesteps_to": reached,
        "timesteps": summary["timesteps"], "seconds": summary["seconds"],
        "timesteps_per_second": summary["timesteps"] / summary["seconds"] if summary["seconds"] > 0 else None,
        "stopped_because": summary["stopped_because"], "run_dir": str(run_dir),
    }


def run_one(runs_root: str, spec: RLScorecardSpec, run: tuple[str, str, int], ref: Reference) -> dict[str, Any]:
    """One unit of work (a local worker process or a Ray task): train (or resume) one run, then score it."""
    import torch

    from baselines.rl.run import train_rl

    torch.set_num_threads(1)
    run_dir = Path(runs_root) / run_name(*run, spec.curriculum)
    train_rl(spec.config(*run), run_dir, resume=(run_dir / "config.json").exists())
    card = score_run(run_dir, spec, run, ref)
    atomic_write_text(run_dir / CARD_FILE, json.dumps(card, indent=2))
    return card


def check_out(spec: RLScorecardSpec, out: Path) -> None:
    """Refuse an output folder that holds a supervised score card, or an RL card with another budget. Reads only."""
    if (out / SUPERVISED_SPEC_FILE).exists():
        raise ValueError(f"{out} holds a supervised benchmark ({SUPERVISED_SPEC_FILE}); use another --out for the RL card")
    if (out / SPEC_FILE).exists():
        saved, mine = read_json(out / SPEC_FILE), spec.to_json()
        differ = [k for k in RLScorecardSpec.BUDGET if saved.get(k) != mine[k]]
        if differ:
            raise ValueError(f"{out} holds an RL score card with another budget ({differ}); use another --out")


def run_rl_scorecard(spec: RLScorecardSpec, out: str | os.PathLike, backend: BackendConfig | None = None,
                     storage: str | os.PathLike | None = None, log: Callable[[str], None] = lambda message: None,
                     on_run: Callable[[dict[str, Any]], None] = lambda result: None) -> list[dict[str, Any]]:
    """Run every (unfinished) run of ``spec`` and write the RL score card into ``out``.

    ``backend`` (default: ``spec.workers`` local processes) says where the runs go (one unit of work each);
    run folders go to ``storage/runs`` (default ``out/runs``). Everything is checked (the spec, the
    backend, the references, the output folder) before anything is written. A run that fails does not
    stop the others: the card is written from those that finished, then
    :class:`~baselines.backends.UnitsFailed` names the failed folders (rerun the command to retry them).
    """
    spec.validate()
    backend = (backend or BackendConfig(workers=spec.workers)).validate()
    refs = references(spec)
    out = Path(out)
    runs_root = (Path(storage) if storage is not None else out) / "runs"
    check_out(spec, out)
    make_output_folder(out, "out")
    make_output_folder(runs_root, "out" if storage is None else "storage")
    atomic_write_text(out / SPEC_FILE, json.dumps(spec.to_json(), indent=2))
    results, units = [], []
    for run in spec.runs():
        run_dir = runs_root / run_name(*run, spec.curriculum)
        if (run_dir / CARD_FILE).exists():
            results.append(read_json(run_dir / CARD_FILE))
            on_run(results[-1])
        else:
            units.append(Unit(run_dir.name, (str(run_dir),), run_one, (str(runs_root), spec, run, refs[run[0], run[2]])))
    where = f"{backend.workers} local workers" if backend.backend == "local" else "Ray"
    log(f"{len(spec.runs())} runs: {len(results)} finished earlier, {len(units)} to run on {where}")

    def done(unit: Unit, result: dict[str, Any]) -> None:
        results.append(result)
        normalized = "-" if result["normalized"] is None else f"{result['normalized']:.3f}"
        log(f"{unit.name}: normalized return {normalized} after {result['timesteps']} timesteps")
        on_run(result)

    _, failures = run_units(units, backend, on_done=done, on_failure=lambda failure: log(str(failure)),
                            storage=runs_root)
    if results:
        write_scorecard(results, spec, out)
    if failures:
        raise UnitsFailed(failures)
    return results


# ----- the card -----------------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _median(values: Sequence[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def scorecard_rows(results: Sequence[dict[str, Any]], spec: RLScorecardSpec) -> list[dict[str, Any]]:
    """One row per preset x policy (in the spec's order), aggregated over seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["preset"], r["policy"]), []).append(r)
    order = {(p, q): i for i, (p, q) in enumerate((p, q) for p in spec.presets for q in spec.policies)}
    rows = []
    for (preset, policy), runs in sorted(groups.items(), key=lambda item: order.get(item[0], len(order))):
        normalized = [r["normalized"] for r in runs if r["normalized"] is not None]
        row = {"preset": preset, "policy": policy, "curriculum": spec.curriculum or "none", "n": runs[0]["n"],
               "seeds": len(runs), "scored": len(normalized), "normalized_median": _median(normalized),
               "normalized_min": min(normalized, default=None), "normalized_max": max(normalized, default=None),
               "success_rate_median": _median([r["success_rate"] for r in runs])}
        heads = sorted({n for r in runs for n in r["accuracy"]}, key=int)
        row["accuracy_median"] = " ".join(
            f"N={n}:{_fmt(_median([r['accuracy'].get(n) for r in runs]))}" for n in heads) or "-"
        for level in LEVELS:
            reached = [r["timesteps_to"][str(level)] for r in runs if r["timesteps_to"][str(level)] is not None]
            row[f"timesteps_to_{level}_median"] = _median(reached)
            row[f"timesteps_to_{level}_reached"] = len(reached)
        row["timesteps_median"] = _median([r["timesteps"] for r in runs])
        row["timesteps_per_second_median"] = _median([r["timesteps_per_second"] for r in runs])
        rows.append(row)
    return rows


def write_scorecard(results: Sequence[dict[str, Any]], spec: RLScorecardSpec, out: Path) -> None:
    """``rl_scorecard.csv`` (one row per preset x policy) and ``rl_scorecard.md`` (the table and the references)."""
    rows = scorecard_rows(results, spec)
    write_csv(out / "rl_scorecard.csv", rows)
    lines = ["| preset | policy | normalized return: median [min, max] | success rate | per-head accuracy | "
             "timesteps to 0.5 | timesteps to 0.9 | timesteps/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        span = f"{_fmt(r['normalized_median'])} [{_fmt(r['normalized_min'])}, {_fmt(r['normalized_max'])}]"
        if r["scored"] < r["seeds"]:
            span += f" ({r['scored']}/{r['seeds']} scored)"
        reach = [f"{_fmt(r[f'timesteps_to_{level}_median'], 0)} ({r[f'timesteps_to_{level}_reached']}/{r['seeds']})"
                 for level in LEVELS]
        lines.append(f"| {r['preset']} | {r['policy']} | {span} | {_fmt(r['success_rate_median'])} | "
                     f"{r['accuracy_median']} | {' | '.join(reach)} | {_fmt(r['timesteps_per_second_median'], 0)} |")
    refs = sorted({(r["preset"], r["seed"], r["reference"]["oracle"], r["reference"]["random"]) for r in results})
    lines += ["", f"Curriculum: {spec.curriculum or 'none (trained at the preset N)'}. References (mean return on "
                  f"each seed's {spec.eval_episodes} evaluation episodes, oracle / uniformly random policy): "
              + "; ".join(f"{p} seed {s}: {o:g} / {q:g}" for p, s, o, q in refs) + "."]
    atomic_write_text(out / "rl_scorecard.md", "\n".join(lines) + "\n")
    try:
        plot_scorecard(results, spec, out / "normalized_over_timesteps.png")
    except ImportError:
        pass


def plot_scorecard(results: Sequence[dict[str, Any]], spec: RLScorecardSpec, path: Path) -> None:
    """Each run's normalized return over training timesteps, one panel per preset, one color per policy
    (needs matplotlib)."""
    from baselines.plots import pyplot, save_figure

    plt = pyplot()
    presets = [p for p in spec.presets if any(r["preset"] == p for r in results)]
    fig, axes = plt.subplots(1, len(presets), figsize=(4.5 * len(presets), 3.5), squeeze=False)
    colors = {policy: f"C{i % 10}" for i, policy in enumerate(spec.policies)}
    for ax, preset in zip(axes[0], presets):
        labelled = set()
        for r in sorted((r for r in results if r["preset"] == preset), key=lambda r: (r["policy"], r["seed"])):
            points = [(t, v) for t, v in r["curve"] if v is not None]
            if points:
                ax.plot(*zip(*points), color=colors.get(r["policy"], "k"), alpha=0.7,
                        label=None if r["policy"] in labelled else r["policy"])
                labelled.add(r["policy"])
        ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{preset} (N = {PRESETS[preset].n})")
        ax.set_xlabel("training timesteps")
        ax.set_ylabel("normalized return (random 0, oracle 1)")
        ax.legend(fontsize=7)
    save_figure(fig, path)


__all__ = ["CARD_FILE", "LEVELS", "PPO_ENT_COEF", "PPO_LR", "RLScorecardSpec", "Reference", "expand_presets", "plot_scorecard", "reference",
           "references", "run_rl_scorecard", "scorecard_rows", "write_scorecard"]
