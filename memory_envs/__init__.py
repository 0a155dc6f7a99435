"""N-parity and N-DMS memory tasks: Gymnasium envs, native vector envs, a batched generator and curricula.

Importing the package registers ``NParity-v0`` and ``NDMS-v0``::

    import gymnasium as gym
    import memory_envs

    env = gym.make("NParity-v0", n=20)
    venv = gym.make_vec("NDMS-v0", num_envs=64, vectorization_mode="vector_entry_point", heads=[2, 3, 4])
"""

import gymnasium as gym

from memory_envs import tasks
from memory_envs.batch import Batch, make_batch
from memory_envs.curriculum import Curriculum, CurriculumWrapper, EpisodeAccuracyTracker, VectorCurriculumWrapper
from memory_envs.envs import MemoryTaskEnv, NDMSEnv, NParityEnv, OraclePolicy
from memory_envs.vector import MemoryTaskVectorEnv, NDMSVectorEnv, NParityVectorEnv

ENV_IDS = {"parity": "NParity-v0", "dms": "NDMS-v0"}

for _task, _cls in (("parity", "NParity"), ("dms", "NDMS")):
    if ENV_IDS[_task] not in gym.registry:
        gym.register(
            id=ENV_IDS[_task],
            entry_point=f"memory_envs.envs:{_cls}Env",
            vector_entry_point=f"memory_envs.vector:{_cls}VectorEnv",
        )

__all__ = [
    "Batch",
    "Curriculum",
    "CurriculumWrapper",
    "ENV_IDS",
    "EpisodeAccuracyTracker",
    "MemoryTaskEnv",
    "MemoryTaskVectorEnv",
    "NDMSEnv",
    "NDMSVectorEnv",
    "NParityEnv",
    "NParityVectorEnv",
    "OraclePolicy",
    "VectorCurriculumWrapper",
    "make_batch",
    "tasks",
]
