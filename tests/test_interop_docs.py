"""The recipes in docs/interop.md run as written (one namespace, in order, as a reader would run them)."""

import re
import sys
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "interop.md"


def test_interop_recipes_run(monkeypatch):
    if "numba" not in sys.modules:  # tianshou's replay buffer JIT-compiles for ~10 s; interpreted it is instant
        monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    threads = torch.get_num_threads()
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 9  # SB3 x2, torchrl x2, tianshou, skrl, CleanRL loop, pufferlib, curriculum, wrappers
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    assert namespace["stats"].n_collected_steps == 100  # tianshou collected
    assert 0.2 < namespace["np"].mean(namespace["successes"]) < 0.8  # CleanRL loop: random actions, chance 0.5
    assert namespace["obs"].tolist()[1:] == [1.0, 0.0, 0.0]  # the wrappers' first observation
