"""Hostile conditions for the ``memory-envs`` command (issue 32): does what should hold, hold on this machine?

Runs ``python3 -m baselines.cli`` of this checkout in a temporary folder against bad sizes, symlinked run-folder
entries, user files inside run subfolders with ``--overwrite``, a full disk, ``kill -9`` of a parent with workers,
SIGTERM during running parity's length test, two writers started at once, the one-line refusals of bad options
and crafted JSON files. Prints one line per case, HELD or BROKEN with what was seen, then a summary; exits 1 if
anything broke. Every case is tiny (hidden size 8, ``--threads 1``, a few steps); the whole script takes a few
minutes on 2 cores. Run:

    PYTHONPATH=. python3 benchmarks/adversarial.py                 # every case
    PYTHONPATH=. python3 benchmarks/adversarial.py --list          # the cases' names
    PYTHONPATH=. python3 benchmarks/adversarial.py --only symlink  # the cases whose name holds "symlink"

A command that should have been refused but was accepted is stopped (its process group killed) as soon as it
writes its folder or after ``--timeout`` seconds, so a BROKEN case never runs away with the machine.

The full disk is simulated, not mounted (no root needed, the same byte count on every machine): a
``sitecustomize.py`` put first on the command's PYTHONPATH makes every file that Python code opens for writing,
and every ``os.write`` to a regular file (the project's atomic writes), raise ``OSError(ENOSPC)`` once the process
has written ``MEMORY_ENVS_ENOSPC_BYTES`` bytes in all; writes made outside Python (safetensors' own writer) are
not counted. The same command without the budget is
then "the disk after space was freed".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
T = ["--hidden-size", "8", "--batch-size", "16", "--eval-every", "10", "--eval-batches", "1", "--device", "cpu",
     "--quiet", "--no-plots", "--threads", "1", "--max-steps", "20"]
"""The issue's tiny training run."""
RL_T = ["--hidden-size", "4", "--n-envs", "2", "--n-steps", "16", "--batch-size", "32", "--n-epochs", "1",
        "--total-timesteps", "64", "--eval-every", "32", "--eval-episodes", "2", "--quiet", "--threads", "1"]
CARD_T = ["--cores", "leaky", "--tasks", "parity", "--curricula", "single", "--seeds", "0", "--max-steps", "4",
          "--eval-every", "2", "--eval-batches", "1", "--hidden-size", "4", "--timescale-steps", "10", "--workers", "1"]
ENOSPC_SITE = textwrap.dedent('''
    """Written by benchmarks/adversarial.py: files opened for writing by Python code, and os.write to a regular file,
    raise ENOSPC once this process has written MEMORY_ENVS_ENOSPC_BYTES bytes in all (a simulated full disk)."""
    import builtins, errno, io, os, stat

    _BUDGET = int(os.environ.get("MEMORY_ENVS_ENOSPC_BYTES", "-1"))
    _SPENT = [0]
    _OPEN = io.open


    class _Counted:
        def __init__(self, file):
            self._file = file

        def write(self, data):
            _SPENT[0] += len(data)
            if _SPENT[0] > _BUDGET:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), getattr(self._file, "name", None))
            return self._file.write(data)

        def __getattr__(self, name):
            return getattr(self._file, name)

        def __iter__(self):
            return iter(self._file)

        def __enter__(self):
            self._file.__enter__()
            return self

        def __exit__(self, *exc):
            return self._file.__exit__(*exc)


    def _open(file, mode="r", *args, **kwargs):
        handle = _OPEN(file, mode, *args, **kwargs)
        return _Counted(handle) if any(c in mode for c in "wax+") else handle


    _WRITE = os.write


    def _write(fd, data):  # the project's atomic writes and metrics appends: os.open + os.write
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)  # files only: not the terminal, pipes or sockets
        except OSError:
            regular = False
        if regular:
            _SPENT[0] += len(data)
            if _SPENT[0] > _BUDGET:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return _WRITE(fd, data)


    if _BUDGET >= 0:
        builtins.open = io.open = _open
        os.write = _write
''')


@dataclass
class Result:
    code: int | None
    out: str
    err: str
    note: str = ""

    def line(self) -> str:
        """What the command said, short: the note, else the last stderr line, else the last stdout line."""
        text = self.note or (self.err.strip().splitlines() or self.out.strip().splitlines() or [""])[-1]
        return f"exit {self.code}: {text[:220]}"


class Context:
    """The temporary folder of one run of the script, the command's environment, and a finished run to copy."""

    def __init__(self, root: Path, timeout: float) -> None:
        self.root, self.timeout = root, timeout
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                    "PYTHONWARNINGS": "ignore", "SB3_LOGDIR": str(root / "sb3")}
        self._template: Path | None = None
        self.count = 0

    def folder(self, name: str) -> Path:
        """A fresh folder for one case."""
        self.count += 1
        path = self.root / f"{self.count:02d}-{name}"
        path.mkdir()
        return path

    def template(self) -> Path:
        """A finished 20-step run with checkpoints (threshold 0.01: every evaluation solves an N), made once."""
        if self._template is None:
            self._template = self.root / "template"
            result = self.run(["train", *T, "--threshold", "0.01", "--run-dir", str(self._template)], self.root)
            if result.code != 0:
                raise RuntimeError(f"the template run failed: {result.line()}")
        return self._template

    def copy_template(self, where: Path) -> Path:
        return Path(shutil.copytree(self.template(), where / "run", symlinks=True))

    def run(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None,
            stop_when: Callable[[], bool] | None = None, timeout: float | None = None) -> Result:
        """``memory-envs ARGV`` in ``cwd``, in a process group of its own. ``stop_when`` is polled: when it turns
        true (e.g. a folder the command should never have written appears), or at the timeout, the whole group is
        killed and the result says so."""
        return self.popen_run([sys.executable, "-m", "baselines.cli", *argv], cwd, env, stop_when, timeout)

    def popen_run(self, command: list[str], cwd: Path, env: dict[str, str] | None = None,
                  stop_when: Callable[[], bool] | None = None, timeout: float | None = None) -> Result:
        limit = time.monotonic() + (timeout or self.timeout)
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            process = subprocess.Popen(command, cwd=cwd, env=env or self.env, stdout=out, stderr=err,
                                       start_new_session=True)
            note = ""
            while process.poll() is None:
                if stop_when is not None and stop_when():
                    note = "accepted (stopped when it wrote its folder)"
                elif time.monotonic() > limit:
                    note = f"still running after {timeout or self.timeout:.0f} s (stopped)"
                if note:
                    kill_group(process.pid)
                    process.wait()
                    break
                time.sleep(0.1)
            out.seek(0)
            err.seek(0)
            return Result(process.returncode, out.read(), err.read(), note)


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def children_map() -> dict[int, list[int]]:
    """{pid: its child pids} of every process, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = children_map(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def one_line_refusal(result: Result, words: str) -> tuple[bool, str]:
    lines = result.err.strip().splitlines()
    held = (result.code == 2 and len(lines) == 1 and lines[0].startswith("memory-envs: error: ")
            and words in lines[0] and not result.note)
    if "Traceback" in result.err:
        return held, f"exit {result.code}: a traceback ending {lines[-1][:200]}"
    return held, result.line()


def no_traceback(result: Result) -> bool:
    return "Traceback" not in result.err and not result.note


# ----- the cases ---------------------------------------------------------------------------------------
Case = Callable[[Context], tuple[bool, str]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(function: Case) -> Case:
        CASES[name] = function
        return function
    return register


def refused(name: str, argv: list[str], words: str, flag: str, timeout: float | None = None,
            needs: str | None = None) -> None:
    """A case: ``memory-envs ARGV FLAG <folder>`` must be a one-line refusal with ``words`` and write no folder."""

    def check(ctx: Context) -> tuple[bool, str]:
        if needs is not None and not importable(needs):
            return True, f"skipped: {needs} is not installed"
        where = ctx.folder(name)
        target = where / "out"
        result = ctx.run([*argv, flag, str(target)], where, stop_when=target.exists, timeout=timeout)
        held, seen = one_line_refusal(result, words)
        if target.exists():
            held, seen = False, f"{seen}; it created {target.name}/"
        return held, seen

    CASES[name] = check


def importable(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


# Point 2: sizes that cannot fit the machine (the messages differ by fix: any one-line refusal holds).
refused("size: rl --vec-env subproc --n-envs 100", ["rl", *RL_T, "--vec-env", "subproc", "--n-envs", "100"], "",
        "--run-dir", needs="sb3_contrib")
refused("size: rl --n-envs 1000000", ["rl", *RL_T, "--n-envs", "1000000"], "", "--run-dir", needs="sb3_contrib")
refused("size: rl --eval-episodes 1000000000", ["rl", *RL_T, "--eval-episodes", "1000000000"], "", "--run-dir",
        needs="sb3_contrib")
refused("size: train running_parity --test-sequences 1000000000",
        ["train", *T, "--task", "running_parity", "--test-sequences", "1000000000"], "", "--run-dir")
refused("size: benchmark --eval-batches 1000000000", ["benchmark", *CARD_T, "--eval-batches", "1000000000"], "",
        "--out")
refused("size: benchmark --backend ray --address 127.0.0.1:1",
        ["benchmark", *CARD_T, "--backend", "ray", "--address", "127.0.0.1:1"], "", "--out", timeout=90)

# Point 5: tracebacks and silent acceptance.
refused("refuse: benchmark --seeds 0,0", ["benchmark", *CARD_T, "--seeds", "0,0"], "--seeds", "--out")
refused("refuse: train --seeds ''", ["train", *T, "--seeds", ""], "--seeds", "--run-dir")
refused("refuse: train --gpus-per-run -1", ["train", *T, "--gpus-per-run", "-1"], "--gpus-per-run", "--run-dir")
refused("refuse: train --seeds 0,1 --cpus-per-run 0", ["train", *T, "--seeds", "0,1", "--cpus-per-run", "0"],
        "--cpus-per-run", "--run-dir")
refused("refuse: benchmark --max-retries -1", ["benchmark", *CARD_T, "--max-retries", "-1"], "--max-retries", "--out")
refused("refuse: rl --threshold nan", ["rl", *RL_T, "--threshold", "nan"], "--threshold", "--run-dir",
        needs="sb3_contrib")
refused("refuse: rl --ent-coef inf", ["rl", *RL_T, "--ent-coef", "inf"], "--ent-coef", "--run-dir",
        needs="sb3_contrib")
refused("refuse: rl --batch-size 3 (16-step rollout)", ["rl", *RL_T, "--batch-size", "3", "--n-envs", "2",
                                                        "--n-steps", "8"], "--batch-size", "--run-dir",
        needs="sb3_contrib")


@case("refuse: benchmark / reproduce --out /proc/x")
def uncreatable_out(ctx: Context) -> tuple[bool, str]:
    where = ctx.folder("proc")
    seen = []
    for argv in (["benchmark", *CARD_T, "--out", "/proc/memory-envs/x"],
                 ["reproduce", "--scale", "smoke", "--out", "/proc/memory-envs/x"]):
        held, line = one_line_refusal(ctx.run(argv, where), "--out")
        if not held:
            return False, f"{argv[0]}: {line}"
        seen.append(line)
    return True, seen[-1]


@case("refuse: analyze --threads 0")
def analyze_threads(ctx: Context) -> tuple[bool, str]:
    return one_line_refusal(ctx.run(["analyze", str(ctx.template()), "--threads", "0"], ctx.root), "--threads")


@case("refuse: python entry points (Curriculum.update, make_batch, gym.make modulus, TrainConfig task)")
def python_entry_points(ctx: Context) -> tuple[bool, str]:
    script = textwrap.dedent('''
        import gymnasium as gym, memory_envs
        from memory_envs import make_batch
        from memory_envs.curriculum import Curriculum
        from baselines.trainer import TrainConfig
        calls = {"update 5.0": (lambda: Curriculum("multi", 2).update({2: 5.0}), "accuracy[2]"),
                 "update '0.99'": (lambda: Curriculum("multi", 2).update({2: "0.99"}), "accuracy[2]"),
                 "make_batch seed=-1": (lambda: make_batch("parity", [2], 4, seed=-1), "seed"),
                 "modulus=10**12": (lambda: gym.make("RunningParity-v0", modulus=10**12), "modulus"),
                 "task foo": (lambda: TrainConfig(task="foo").validate(), "running_parity")}
        for name, (call, words) in calls.items():
            try:
                call()
                print(f"BROKEN {name}: accepted")
            except ValueError as error:
                print(("HELD" if words in str(error) else "BROKEN") + f" {name}: {error}")
            except Exception as error:
                print(f"BROKEN {name}: {type(error).__name__}: {error}")
    ''')
    result = ctx.popen_run([sys.executable, "-c", script], ctx.root)
    lines = result.out.strip().splitlines()
    broken = [line for line in lines if not line.startswith("HELD")]
    if result.code != 0 or len(lines) != 5:
        return False, result.line()
    return not broken, "; ".join(broken) if broken else f"{len(lines)} calls refused, naming the argument"


# Point 6 (and 5): crafted JSON files.
def crafted_config(name: str, text: Callable[[], str], argv: Callable[[Path], list[str]]) -> None:
    def check(ctx: Context) -> tuple[bool, str]:
        run = ctx.copy_template(ctx.folder("crafted"))
        (run / "config.json").write_text(text())
        return one_line_refusal(ctx.run(argv(run), run.parent), "config.json")

    CASES[name] = check


for command, make_argv in (("plot", lambda run: ["plot", str(run)]),
                           ("analyze", lambda run: ["analyze", str(run), "--no-plots"]),
                           ("train --resume", lambda run: ["train", *T, "--resume", "--run-dir", str(run)])):
    crafted_config(f"file: config.json nested 100,000 deep, {command}", lambda: "[" * 100_000 + "]" * 100_000,
                   make_argv)
crafted_config("file: config.json of 2 MB (valid JSON), plot",
               lambda: json.dumps({"task": "parity", "pad": "x" * 2_000_000}), lambda run: ["plot", str(run)])


# Point 1: symlinked run-folder entries must not be written through, followed or deleted.
def symlinked(entry: str, outside_is_dir: bool) -> None:
    def check(ctx: Context) -> tuple[bool, str]:
        where = ctx.folder("symlink")
        run = ctx.copy_template(where)
        outside = where / "outside"
        if outside_is_dir:
            outside.mkdir()
            (outside / "mine.txt").write_text("precious\n")
        else:
            outside.write_text("precious\n")
        target = run / entry
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        target.symlink_to(outside)
        before = snapshot(outside)
        result = ctx.run(["train", *T, "--threshold", "0.01", "--max-steps", "40", "--resume", "--run-dir", str(run)],
                         where)
        after = snapshot(outside)
        if after != before:
            return False, f"the outside {'folder' if outside_is_dir else 'file'} changed ({result.line()})"
        if not target.is_symlink():
            return False, f"the symlink {entry} was replaced or deleted ({result.line()})"
        if not no_traceback(result):
            return False, f"outside untouched, but {one_line_refusal(result, '')[1]}"
        return True, f"outside untouched; {result.line()}"

    CASES[f"symlink: {entry} -> outside, train --resume"] = check


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or ``path`` itself) and its bytes."""
    if path.is_file():
        return {".": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(path.rglob("*"))}


for entry, is_dir in ((".lock", False), ("checkpoints", True), ("last", True), ("last.old", True)):
    symlinked(entry, is_dir)


# Point 1: --overwrite deletes only what runs write, at every depth.
def user_file(relative: str) -> None:
    def check(ctx: Context) -> tuple[bool, str]:
        where = ctx.folder("overwrite")
        run = ctx.copy_template(where)
        path = run / relative
        if relative.startswith("summary.json/"):
            (run / "summary.json").unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("my notes\n")
        result = ctx.run(["train", *T, "--overwrite", "--run-dir", str(run)], where)
        if not path.is_file() or path.read_text() != "my notes\n":
            return False, f"{relative} was deleted ({result.line()})"
        return no_traceback(result), f"{relative} kept; {result.line()}"

    CASES[f"overwrite: user file {relative}"] = check


for relative in ("last/notes.txt", "checkpoints/n002/notes.txt", "tb/mine/events.txt", "summary.json/user.txt"):
    user_file(relative)


# Point 3: a full disk (simulated: see the module's docstring).
def full_disk(name: str, argv: Callable[[Path], list[str]], budget: int, then: list[str]) -> None:
    def check(ctx: Context) -> tuple[bool, str]:
        where = ctx.folder("enospc")
        site = where / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(ENOSPC_SITE)
        env = {**ctx.env, "PYTHONPATH": os.pathsep.join([str(site), ctx.env["PYTHONPATH"]]),
               "MEMORY_ENVS_ENOSPC_BYTES": str(budget)}
        full = ctx.run(argv(where), where, env=env)
        lines = full.err.strip().splitlines()
        if "--quiet" not in argv(where):  # a progress bar's redraws (benchmark's) are not lines: its error lines are
            lines = [line for line in lines if line.startswith("memory-envs: error: ")]
        if full.code == 0:
            return False, f"the budget of {budget} bytes was never spent ({full.line()}): raise it"
        if not no_traceback(full) or len(lines) != 1:
            return False, f"on the full disk: {one_line_refusal(full, '')[1]}"
        freed = ctx.run([*argv(where), *then], where)
        if freed.code != 0:
            return False, f"full disk: {lines[0][:120]}; after space was freed: {freed.line()}"
        return True, f"full disk: {lines[0][:120]}; after space was freed the re-run finished"

    CASES[name] = check


full_disk("enospc: fresh train, then the same command", lambda where: ["train", *T, "--run-dir", str(where / "run")],
          200, [])  # the whole run writes about 5,000 bytes from Python: 600 before its first step
full_disk("enospc: train's first save, then --resume", lambda where: ["train", *T, "--run-dir", str(where / "run")],
          2500, ["--resume"])
full_disk("enospc: train's second save, then --resume", lambda where: ["train", *T, "--run-dir", str(where / "run")],
          3500, ["--resume"])
full_disk("enospc: benchmark, then the same command", lambda where: ["benchmark", *CARD_T, "--out", str(where / "b")],
          3000, [])


# Point 2: workers die with their parent.
def orphans(name: str, argv: list[str], workers: int, needs: str | None = None) -> None:
    def check(ctx: Context) -> tuple[bool, str]:
        if needs is not None and not importable(needs):
            return True, f"skipped: {needs} is not installed"
        where = ctx.folder("kill9")
        process = subprocess.Popen([sys.executable, "-m", "baselines.cli", *argv, str(where / "out")], cwd=where,
                                   env=ctx.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        deadline, seen = time.monotonic() + ctx.timeout, set()
        while time.monotonic() < deadline and process.poll() is None:
            seen = {pid for pid in descendants(process.pid) if alive(pid)}
            if len(seen) >= workers:
                break
            time.sleep(0.2)
        if process.poll() is not None or len(seen) < workers:
            kill_group(process.pid)
            process.wait()
            return False, f"never saw {workers} workers (saw {len(seen)}; exit {process.returncode})"
        time.sleep(1.0)
        seen |= descendants(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        time.sleep(5.0)
        left = sorted(pid for pid in seen if alive(pid))
        for pid in left:  # ours: clean up what the command left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left:
            return False, f"{len(left)} of its {len(seen)} processes outlived it by 5 s (pids {left[:5]})"
        return True, f"all {len(seen)} of its processes ended with it"

    CASES[name] = check


orphans("kill -9: benchmark with 2 worker processes",
        ["benchmark", *CARD_T, "--cores", "leaky,gru", "--workers", "2", "--max-steps", "100000", "--max-seconds",
         "120", "--out"], 2)
orphans("kill -9: rl --vec-env subproc --n-envs 2",
        ["rl", *RL_T, "--vec-env", "subproc", "--total-timesteps", "1000000", "--run-dir"], 2, needs="sb3_contrib")


# Point 4: SIGTERM during running parity's length test.
PROMPT_SECONDS = 5.0
"""How soon a SIGTERM must end the run: the length test checks the stop request between batches."""


@case("signal: SIGTERM during the running-parity length test")
def sigterm_length_test(ctx: Context) -> tuple[bool, str]:
    where = ctx.folder("sigterm")
    run = where / "run"
    argv = ["train", "--task", "running_parity", "--max-steps", "2", "--eval-every", "1", "--eval-batches", "1",
            "--hidden-size", "8", "--batch-size", "16", "--test-sequences", "2048", "--device", "cpu", "--quiet",
            "--no-plots", "--threads", "1", "--run-dir", str(run)]
    process = subprocess.Popen([sys.executable, "-m", "baselines.cli", *argv], cwd=where, env=ctx.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + ctx.timeout
    while process.poll() is None and not (run / "last.old").is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)  # last.old/: the state of step 2 replaced step 1's, training is over
    time.sleep(1.0)  # the length test runs (about 15 s of it on a busy 2-core machine)
    if process.poll() is not None:
        return False, f"the run ended before the signal (exit {process.returncode}): raise --test-sequences"
    os.kill(process.pid, signal.SIGTERM)
    sent = time.monotonic()
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        kill_group(process.pid)
        process.communicate()
        return False, "still running 20 s after SIGTERM (killed)"
    took = time.monotonic() - sent
    summary = run / "summary.json"
    stopped = json.loads(summary.read_text()).get("stopped_because") if summary.is_file() else None
    held = (process.returncode == 128 + signal.SIGTERM and took < PROMPT_SECONDS and stopped == "interrupted"
            and "Traceback" not in err)
    return held, (f"exit {process.returncode} {took:.1f} s after SIGTERM (at most {PROMPT_SECONDS} s expected); "
                  f"summary.json stopped_because={stopped}")


# Point 7: two writers started at the same instant.
@case("lock: two train runs into one new folder at once")
def two_writers(ctx: Context) -> tuple[bool, str]:
    where = ctx.folder("race")
    # 2,000 steps (a few seconds) keep the first writer in its folder while the second one starts: with T's 20
    # steps a quiet machine could finish the first before the second had imported torch.
    command = [sys.executable, "-m", "baselines.cli", "train", *T, "--max-steps", "2000",
               "--run-dir", str(where / "run")]
    processes = [subprocess.Popen(command, cwd=where, env=ctx.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, start_new_session=True) for _ in range(2)]
    results = []
    for process in processes:
        try:
            results.append((process.wait(timeout=ctx.timeout), process.stderr.read()))
        except subprocess.TimeoutExpired:
            kill_group(process.pid)
            return False, "a writer was still running at the timeout"
    codes = sorted(code for code, _ in results)
    loser = next((err.strip() for code, err in results if code != 0), "")
    if codes == [0, 0]:
        return True, "no race this time: one started after the other finished (run again)"
    held = codes == [0, 2] and "in use by another process (pid" in loser
    return held, f"exit codes {codes}; the loser: {loser.splitlines()[-1][:200] if loser else ''}"


# ----- the script --------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="run the cases whose name holds this text")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a case's command may run (default: 120)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args()
    names = [name for name in CASES if args.only is None or args.only in name]
    if args.list or not names:
        print("\n".join(CASES) if args.list else f"no case's name holds {args.only!r}")
        return 0 if args.list else 2
    root = Path(tempfile.mkdtemp(prefix="memory-envs-adversarial-"))
    ctx = Context(root, args.timeout)
    broken = 0
    started = time.monotonic()
    try:
        for name in names:
            try:
                held, seen = CASES[name](ctx)
            except Exception as error:  # the case itself failed: count it as broken, say why
                held, seen = False, f"the case failed: {type(error).__name__}: {error}"
            broken += not held
            print(f"{'HELD  ' if held else 'BROKEN'} {name}: {seen}", flush=True)
    finally:
        if args.keep:
            print(f"folders kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{len(names) - broken} held, {broken} broken, of {len(names)} cases in {time.monotonic() - started:.0f} s")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
