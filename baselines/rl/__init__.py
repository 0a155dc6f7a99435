"""RL baseline: RecurrentPPO (sb3-contrib) with our tau cores on N-parity / N-DMS, and on the token tasks
(``WordProblem-v0`` with its ``group``, ``ModularArithmetic-v0`` and their presets: no N, no curriculum, every
labelled step scored by default; the policy's cores are as wide as the token vocabulary).

    memory-envs rl --env NDMS-v0 --n 2 --mode every_step --core gru --total-timesteps 50000
    memory-envs rl --env WordProblem-v0 --group s3 --core gru

One run lives in one folder, like the supervised trainer's (:mod:`baselines.trainer`)::

    config.json      the RLConfig
    metrics.jsonl    one line per evaluation: timesteps, time (s), ns (the Ns evaluated: the
                     curriculum's active Ns), mean_return, success_rate, accuracy (per N, keys str(N))
    last/            the resume state (what ``resume=True`` / ``--resume`` continues): model.zip
                     (``RecurrentPPO.save``), state.json (timesteps, seconds, curriculum, ...), rng.json + rng.safetensors
    model.zip        the final RecurrentPPO (``RecurrentPPO.load`` it; no custom_objects needed)
    summary.json     max_n, timesteps, seconds, stopped_because, ... (see :meth:`RLRun._summary`)
    tb/              TensorBoard logs, only if ``tensorboard`` is installed (the ``rl`` extra)

Training envs: ``n_envs`` single envs (``gym.make(env_id, **env_kwargs)``) in an SB3 DummyVecEnv
(``vec_env="dummy"``) or SubprocVecEnv (``"subproc"``), or the native vector env as an SB3 VecEnv
(``"native"``, :func:`memory_envs.make_sb3_vec_env`; no curriculum), seeded ``seed + i``. ``env_id`` is
a base id or a preset (``NDMS-Easy-v0``: ``n`` must be its N, no curriculum). ``core="stock-lstm"``
trains sb3-contrib's own ``MlpLstmPolicy`` instead of our :class:`agents.RecurrentCorePolicy`. With a curriculum, ONE
:class:`memory_envs.Curriculum` and ONE :class:`memory_envs.EpisodeAccuracyTracker` serve the whole
run, driven from the training side by a :class:`memory_envs.CurriculumDriver`: after every step in
which episodes ended, it collects their ``head_accuracy`` from every env (``env_method``, so the envs
may run in other processes), applies the rule, and when the curriculum advances sets the new Ns on
every env (they take effect at each env's next reset). The action space is fixed at
the largest number of heads the curriculum will score (Discrete(2) for ``single``,
MultiDiscrete([2] * (n_max - n + 1)) for ``multi``).

Evaluation, every ``eval_every`` timesteps and at the end: ``eval_episodes`` episodes of a separate
env scoring the curriculum's active Ns (or the fixed N), deterministic actions, reseeded the same
way at every evaluation. The run stops when the target is reached (the curriculum finished n_max,
or for a fixed N the evaluation passes the curriculum rule: mean and newest head accuracy >
``threshold``), or when ``total_timesteps`` / ``max_seconds`` run out.

Resume. When training starts (before the first metrics line, so results always have a state to resume
from), after every evaluation, at the next rollout boundary (once PPO has trained on every timestep
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

Modules: :mod:`~baselines.rl.config` (:class:`RLConfig`), :mod:`~baselines.rl.run` (:class:`RLRun`,
:func:`train_rl`), :mod:`~baselines.rl.callback` (evaluation, metrics, resume state). The ``memory-envs
rl`` command is in :mod:`baselines.cli.rl`.
"""

from baselines.rl.callback import evaluate_policy
from baselines.rl.config import (
    DEFAULT_N, EVAL_SEED_OFFSET, PPO_ENT_COEF, PPO_LR, POLICY_CORES, RESUME_MAY_CHANGE, RL_CURRICULA, STOCK_LSTM, STOP_REASONS, TASK_OF_ENV,
    VEC_ENVS, RLConfig,
)
from baselines.rl.run import RLRun, train_rl

__all__ = ["DEFAULT_N", "EVAL_SEED_OFFSET", "PPO_ENT_COEF", "PPO_LR", "POLICY_CORES", "RESUME_MAY_CHANGE", "RL_CURRICULA", "STOCK_LSTM",
           "STOP_REASONS", "TASK_OF_ENV", "VEC_ENVS", "RLConfig", "RLRun", "evaluate_policy", "train_rl"]
