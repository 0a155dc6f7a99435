"""The library's training entry points take the commands' load-aware torch thread default (baselines.threads):
a loaded machine is not oversubscribed from Python either, and the caller's own setting is restored after."""

from __future__ import annotations

import pytest
import torch

from baselines import threads
from baselines.trainer import TrainConfig, train


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_default_leaves_the_busy_cores_and_never_exceeds_the_callers_setting(monkeypatch, restore_threads):
    monkeypatch.setattr(threads, "cpu_load", lambda: (4, 1.2))  # 4 cores, one of them busy
    torch.set_num_threads(4)
    assert threads.load_aware_threads()[0] == 3
    torch.set_num_threads(2)
    assert threads.load_aware_threads()[0] == 2
    monkeypatch.setattr(threads, "cpu_load", lambda: (4, 9.0))  # every core busy: still one thread
    assert threads.load_aware_threads()[0] == 1
    with pytest.raises(ValueError, match="threads must be a positive integer or None"):
        with threads.torch_threads(0):
            pass


def test_train_runs_on_the_free_cores_and_restores_the_callers_threads(tmp_path, monkeypatch, restore_threads, device):
    monkeypatch.setattr(threads, "cpu_load", lambda: (4, 3.0))  # one free core
    torch.set_num_threads(2)
    config = TrainConfig(task="parity", curriculum="multi", hidden_size=8, batch_size=16, eval_every=5, eval_batches=1,
                         max_steps=10, device=str(device))
    seen: list[int] = []
    train(config, tmp_path / "default", on_eval=lambda line: seen.append(torch.get_num_threads()))
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2
    seen.clear()
    train(config, tmp_path / "chosen", on_eval=lambda line: seen.append(torch.get_num_threads()), threads=2)
    assert seen and set(seen) == {2} and torch.get_num_threads() == 2


def test_train_rl_runs_on_the_free_cores(tmp_path, monkeypatch, restore_threads):
    pytest.importorskip("sb3_contrib")
    from baselines.rl import RLConfig, train_rl

    monkeypatch.setattr(threads, "cpu_load", lambda: (4, 3.0))
    torch.set_num_threads(2)
    config = RLConfig(env_id="NDMS-v0", n=2, hidden_size=8, total_timesteps=512, eval_every=512, eval_episodes=5)
    seen: list[int] = []
    train_rl(config, tmp_path / "run", on_eval=lambda line: seen.append(torch.get_num_threads()))
    assert seen == [1] and torch.get_num_threads() == 2
