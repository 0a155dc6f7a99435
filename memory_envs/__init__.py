"""N-parity and N-DMS memory tasks and the state-tracking tasks (running parity, group word problems,
modular arithmetic): Gymnasium envs, native vector envs, a batched generator and curricula.

Importing the package registers ``NParity-v0`` and ``NDMS-v0`` (default N without arguments), the
presets ``NParity-Easy-v0`` ... ``NDMS-Hard-v0`` (:data:`PRESETS`), ``RunningParity-v0`` and its presets
``RunningParity-Easy-v0`` ... ``RunningParity-Hard-v0`` (:data:`RUNNING_PARITY_PRESETS`), and the token tasks
``WordProblem-v0`` (``group=``, default S3) and ``ModularArithmetic-v0`` with their presets
``WordProblem-S3-Easy-v0`` ... ``ModularArithmetic-Hard-v0`` (:data:`TOKEN_PRESETS`)::

    import gymnasium as gym
    import memory_envs

    env = gym.make("NParity-v0", n=20)
    venv = gym.make_vec("NDMS-v0", num_envs=64, vectorization_mode="vector_entry_point", heads=[2, 3, 4])
    words = gym.make("WordProblem-v0", group="a5")  # observations: Discrete(60) tokens
"""

from memory_envs import tasks
from memory_envs.batch import Batch, make_batch
from memory_envs.curriculum import (
    Curriculum,
    CurriculumDriver,
    CurriculumWrapper,
    EpisodeAccuracyTracker,
    EpisodeResultsWrapper,
    VectorCurriculumWrapper,
)
from memory_envs.envs import (
    INFO_KEYS, MemoryTaskEnv, ModularArithmeticEnv, NDMSEnv, NParityEnv, OraclePolicy, RunningParityEnv, WordProblemEnv,
)
from memory_envs.presets import (
    DIFFICULTIES, ENV_IDS, MOD_ARITHMETIC_ID, PRESETS, RUNNING_PARITY_ID, RUNNING_PARITY_PRESETS, TOKEN_PRESETS,
    WORD_PROBLEM_ID, Preset, presets, register_envs,
)
from memory_envs.sb3 import make_sb3_vec_env
from memory_envs.vector import (
    MemoryTaskVectorEnv, ModularArithmeticVectorEnv, NDMSVectorEnv, NParityVectorEnv, RunningParityVectorEnv,
    WordProblemVectorEnv,
)
from memory_envs.wrappers import EpisodeStartObservation, PreviousActionObservation

register_envs()

__all__ = [
    "Batch",
    "Curriculum",
    "CurriculumDriver",
    "CurriculumWrapper",
    "DIFFICULTIES",
    "ENV_IDS",
    "EpisodeAccuracyTracker",
    "EpisodeResultsWrapper",
    "EpisodeStartObservation",
    "INFO_KEYS",
    "MOD_ARITHMETIC_ID",
    "MemoryTaskEnv",
    "MemoryTaskVectorEnv",
    "ModularArithmeticEnv",
    "ModularArithmeticVectorEnv",
    "NDMSEnv",
    "NDMSVectorEnv",
    "NParityEnv",
    "NParityVectorEnv",
    "OraclePolicy",
    "PRESETS",
    "Preset",
    "PreviousActionObservation",
    "RUNNING_PARITY_ID",
    "RUNNING_PARITY_PRESETS",
    "RunningParityEnv",
    "RunningParityVectorEnv",
    "TOKEN_PRESETS",
    "VectorCurriculumWrapper",
    "WORD_PROBLEM_ID",
    "WordProblemEnv",
    "WordProblemVectorEnv",
    "make_batch",
    "make_sb3_vec_env",
    "presets",
    "register_envs",
    "tasks",
]
