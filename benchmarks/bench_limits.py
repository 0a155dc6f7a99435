"""Measure what the size limits assume (memory_envs/sizes.py, baselines/rl/config.py) on this machine.

Prints each measurement beside the constant the checks use:

- the least time of one model call (an evaluation batch: 16 sequences of parity N = 2, 8 units) and of one time
  step (16 sequences of 1,000 steps), over every built-in kind, on one CPU thread: the constants must lie below;
- the memory of one ``rl --vec-env subproc`` worker (proportional set size, in a running command), of one
  env in a DummyVecEnv, and of one rollout timestep during PPO's update at 8 and 64 units: the constants must lie
  at or above (Linux: reads /proc). Run:

    PYTHONPATH=. python3 benchmarks/bench_limits.py            # about a minute on 2 shared cores

One run (2 shared cores, load 10-12): a call 4.7 ms at least (the constant: 0.1 ms), a step 52 us (1 us), a
subproc worker 173 MiB, a dummy env 6.2 KB, a rollout timestep 749 bytes at 8 units and 1,277 at 64 (the
constants: 180 MiB, 9 KiB, 1,216 and 2,560 bytes). On a quieter moment the least call was 0.74 ms and the least
step 3.8 us (min-GRU's parallel scan).
"""

from __future__ import annotations

import functools
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages
import agents  # noqa: E402
from baselines.rl import config as rl_config  # noqa: E402
from baselines.rl.run import _make_train_env  # noqa: E402
from baselines.trainer import TrainConfig, Trainer  # noqa: E402
from memory_envs import sizes  # noqa: E402


def status(field: str, pid: int | str = "self") -> int:
    """A ``/proc/PID/status`` (kB) or ``smaps_rollup`` field in bytes."""
    for name in ("status", "smaps_rollup"):
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def least_call_and_step_seconds() -> tuple[float, float]:
    calls, steps = [], []
    with tempfile.TemporaryDirectory() as folder:
        for kind in agents.cores.KINDS:
            trainer = Trainer(TrainConfig(core=kind, hidden_size=8, batch_size=16, eval_batches=20, device="cpu"),
                              Path(folder) / kind)
            trainer.evaluate()
            started = time.perf_counter()
            trainer.evaluate()
            calls.append((time.perf_counter() - started) / 20)
            trainer.close()
            x = torch.zeros(1000, 16, 1)
            with torch.no_grad():
                trainer.model(x, ns=trainer.model.ns)
                started = time.perf_counter()
                trainer.model(x, ns=trainer.model.ns)
            steps.append((time.perf_counter() - started) / 1000)
    return min(calls), min(steps)


def subproc_worker_bytes() -> int:
    """The largest PSS of the workers of a running ``rl --vec-env subproc --n-envs 2`` (the command's own process
    tree: its workers import what the command imports, no more)."""
    import signal
    import subprocess

    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        argv = [sys.executable, "-m", "baselines.cli", "rl", "--vec-env", "subproc", "--n-envs", "2", "--eval-every",
                "64", "--eval-episodes", "2", "--total-timesteps", "10000000", "--threads", "1", "--quiet",
                "--run-dir", str(run)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
        try:
            while not ((run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text()):
                if proc.poll() is not None:
                    raise RuntimeError("the rl run ended before its first evaluation")
                time.sleep(0.2)
            workers = [int(p) for p in os.listdir("/proc") if p.isdigit() and _child_of(int(p), proc.pid)
                       and b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
            return max(status("Pss", w) for w in workers)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _child_of(pid: int, parent: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat[stat.rfind(")") + 2:].split()[1]) == parent


def dummy_env_and_rollout_bytes(hidden_size: int, n_envs: int = 1000) -> tuple[float, float]:
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    c = rl_config.RLConfig(hidden_size=hidden_size, n_envs=n_envs)
    gc.collect()
    before = status("VmRSS")
    venv = DummyVecEnv([functools.partial(_make_train_env, c.env_id, c.env_kwargs(), False)] * n_envs)
    venv.reset()
    envs = status("VmRSS")
    model = RecurrentPPO(c.policy(), venv, n_steps=c.n_steps, batch_size=c.batch_size, n_epochs=1,
                         policy_kwargs=c.policy_kwargs(), device="cpu")
    model.learn(n_envs * c.n_steps)
    return (envs - before) / n_envs, (status("VmHWM") - envs) / (n_envs * c.n_steps)


def main() -> None:
    torch.set_num_threads(1)
    call, step = least_call_and_step_seconds()
    print(f"model call: least {call * 1e3:.2f} ms over every kind; SECONDS_PER_CALL {sizes.SECONDS_PER_CALL * 1e3:.2f} ms")
    print(f"time step: least {step * 1e6:.1f} us over every kind; SECONDS_PER_STEP {sizes.SECONDS_PER_STEP * 1e6:.1f} us")
    worker = subproc_worker_bytes()
    print(f"subproc worker: {worker / 2**20:.0f} MiB (PSS); SUBPROC_WORKER_BYTES "
          f"{rl_config.SUBPROC_WORKER_BYTES / 2**20:.0f} MiB")
    for hidden in (8, 64):  # the first run also measures the envs (after the imports)
        env, rollout = dummy_env_and_rollout_bytes(hidden)
        if hidden == 8:
            print(f"dummy env: {env:.0f} bytes; ENV_OBJECT_BYTES {rl_config.ENV_OBJECT_BYTES}")
        assumed = rl_config.ROLLOUT_BYTES_PER_STEP + rl_config.ROLLOUT_BYTES_PER_UNIT * hidden
        print(f"rollout timestep at {hidden} units: {rollout:.0f} bytes (peak); the check assumes {assumed}")


if __name__ == "__main__":
    main()
