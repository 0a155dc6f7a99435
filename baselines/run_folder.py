"""The run folder that the supervised trainer and the RL baseline share, and its crash-safe writes.

Both write::

    .memory-envs-run  the marker: this folder was created by memory-envs (only such folders are overwritten)
    .lock            the OS lock (fcntl.flock) of the process writing the folder, with its pid
    config.json      the run's config (resume checks it)
    metrics.jsonl    one strict-JSON line per evaluation, appended (non-finite numbers as null)
    last/            the resume state after the latest evaluation (contents up to the caller)
    last.old/        the resume state before it: the fallback when ``last/`` is damaged

``last/`` is replaced in one rename: it is written to ``last.new/`` first, and ``last.old/`` keeps
the previous copy, so a kill at any moment leaves one complete copy and a damaged ``last/`` has an
intact predecessor. The resume state records how many metrics lines it has seen;
:func:`check_metrics` drops the lines a killed run wrote after it (a torn last line included) and
refuses a metrics.jsonl shorter than the state says.

Nothing here deletes what memory-envs did not write: :func:`prepare_new` replaces a non-empty
folder only if it holds the marker and nothing but run-folder entries, and never the current
folder or one above it.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Collection

from agents.checkpoint import CheckpointVersionError, atomic_write

MARKER = ".memory-envs-run"
LOCK = ".lock"
RUN_ENTRIES = frozenset({MARKER, LOCK, "config.json", "metrics.jsonl", "summary.json", "last", "last.new",
                         "last.old", "checkpoints", "model.zip", "tb", "heldout.json", "rlcard.json", "analysis"})
"""Every name a run of this project writes at the top of its folder (figures ``*.png`` and temporary
``.*.tmp`` files besides): ``overwrite`` replaces a folder holding nothing else."""


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked (exists, missing, locked, damaged, from another config)."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename, so readers never see half a file."""
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, so ``json.dumps`` writes strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as strict, indented JSON (non-finite floats as null), atomically."""
    atomic_write_text(path, json.dumps(strict_json(value), indent=2, allow_nan=False))


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` (dicts with the keys of the first) as a CSV table with a header, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def read_json(path: Path, kind: type = dict) -> Any:
    """Read the JSON file ``path``, which must hold a ``kind``; RunFolderError naming the file otherwise."""
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(value, kind):
        raise RunFolderError(f"{path} must hold a JSON {kind.__name__}, found {type(value).__name__}")
    return value


def not_a_folder(path: Path) -> str | None:
    """Why ``path``, given as a run folder, is none: missing, or a file (then the folder holding it is the one
    to give); None for a directory."""
    if path.is_dir():
        return None
    if path.exists():
        return f"{path} is a file, not a run folder: give the folder that holds it, {path.parent}"
    return f"{path} is not a run folder (no such directory)"


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Write ``config`` (JSON-able) as the folder's config.json."""
    write_json(run_dir / "config.json", config)


class RunLock:
    """An exclusive OS lock on ``RUN/.lock`` (``fcntl.flock``), held while one process writes the folder.

    The OS drops it when the process ends, even by SIGKILL, so a stale lock never blocks a resume.
    A second holder gets a RunFolderError naming the first one's pid.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self._file: Any = open(self.path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise RunFolderError(f"run folder {run_dir} is in use by another process (pid {holder}): wait for "
                                 "it to finish or stop it; one process writes a run folder at a time") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()

    def release(self) -> None:
        """Let another process write the folder (also done by the OS when this process ends)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _foreign_entries(run_dir: Path) -> list[str]:
    """The names at the top of ``run_dir`` that no run of this project writes."""
    return sorted(p.name for p in run_dir.iterdir() if not (
        p.name in RUN_ENTRIES or p.suffix == ".png" or (p.name.startswith(".") and p.name.endswith(".tmp"))))


def solved_text(max_n: int | None) -> str:
    """A summary's ``max_n`` as the commands, logs and tables write it: ``"none"`` where no N was solved."""
    return "none" if not max_n else str(max_n)


def check_open_mode(resume: bool, overwrite: bool) -> None:
    """Refuse ``resume`` with ``overwrite``: one continues a run folder, the other replaces it."""
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True exclude each other: resume continues the run folder, "
                         "overwrite replaces it")


def overwrite_refusal(run_dir: Path) -> str | None:
    """Why ``overwrite`` would refuse the non-empty ``run_dir`` (with what to do instead), or None if it may."""
    here = Path.cwd().resolve()
    if run_dir.resolve() in (here, *here.parents):
        return f"overwrite refuses {run_dir}: it is the current folder or holds it; pick a run folder of its own"
    if not (run_dir / MARKER).is_file():
        return (f"overwrite refuses {run_dir}: it is not a run folder made by memory-envs (no {MARKER} marker), so "
                "it may hold your own files; delete it yourself or pick another run folder")
    foreign = _foreign_entries(run_dir)
    if foreign:
        return (f"overwrite refuses {run_dir}: it holds files no run writes ({', '.join(foreign)}); move them out "
                "or pick another run folder")
    return None


def check_new(run_dir: Path, overwrite: bool) -> None:
    """Refuse (RunFolderError) to start a new run in ``run_dir`` unless it is missing or empty, or
    ``overwrite`` and it is a run folder of this project holding nothing else. A refusal offers only what
    would be accepted: ``resume`` where the folder holds a run, ``overwrite`` where it may replace it. Reads only."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} is a file")
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return
    refusal = overwrite_refusal(run_dir)
    if overwrite:
        if refusal is not None:
            raise RunFolderError(refusal)
        return
    resumable = (run_dir / "config.json").is_file()
    if resumable and refusal is None:
        raise RunFolderError(f"run folder {run_dir} is not empty: pass resume=True to continue it or "
                             "overwrite=True to replace it")
    if resumable:
        raise RunFolderError(f"run folder {run_dir} is not empty: pass resume=True to continue its run, or pick "
                             f"another run folder ({refusal})")
    if refusal is None:
        raise RunFolderError(f"run folder {run_dir} is not empty and holds no run to resume (no config.json): pass "
                             "overwrite=True to replace it or pick another run folder")
    raise RunFolderError(f"run folder {run_dir} is not empty and holds no run to resume (no config.json), and "
                         f"{refusal}")


def create_run_folder(run_dir: Path, config: dict[str, Any], overwrite: bool) -> RunLock:
    """Start a new run in ``run_dir`` (checked by :func:`check_new`) and return its held lock.

    Writes the marker, config.json and an empty metrics.jsonl; with ``overwrite``, first deletes the
    run-folder entries of the run it replaces (under the lock).
    """
    check_new(run_dir, overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir)
    try:
        for entry in run_dir.iterdir():
            if entry.name == LOCK:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        atomic_write_text(run_dir / MARKER, "memory-envs run folder: `--overwrite` may replace this folder\n")
        write_config(run_dir, config)
        atomic_write_text(run_dir / "metrics.jsonl", "")
    except BaseException:
        lock.release()
        raise
    return lock


def written_by(config: dict[str, Any]) -> str:
    """The command whose run folder holds ``config`` (its config.json): ``rl`` (the RL baseline's config
    names an ``env_id``) or ``train`` (the supervised trainer, also the folders of ``import-authors``)."""
    return "rl" if "env_id" in config else "train"


def saved_config(run_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """``run_dir``'s config.json, which a resume with ``config`` continues; RunFolderError if the folder holds
    no run, or a run of the other command (``rl`` / ``train``: the error names the command that continues it)."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise RunFolderError(f"cannot resume: {run_dir} is not a run folder (no config.json)")
    saved = read_json(config_path)
    if written_by(saved) != written_by(config):
        raise RunFolderError(f"cannot resume {run_dir}: it is a run folder of `memory-envs {written_by(saved)}`; "
                             f"continue it with memory-envs {written_by(saved)} --resume --run-dir {run_dir}")
    return saved


def resume_settings(run_dir: Path, asked: dict[str, Any], given: Collection[str],
                    may_change: Collection[str]) -> dict[str, Any]:
    """The config a resume of ``run_dir`` continues: the folder's config.json, with the fields in ``given``
    (set by the caller, e.g. options on the command line) taken from ``asked``. RunFolderError naming each
    given field outside ``may_change`` whose value differs from the run's: a resume continues the run's own
    settings. Reads only."""
    saved = saved_config(run_dir, asked)
    differ = sorted(k for k in given if k in asked and k not in may_change and saved.get(k, asked[k]) != asked[k])
    if differ:
        values = ", ".join(f"{k}={asked[k]!r} (the run's: {saved[k]!r})" for k in differ)
        raise RunFolderError(f"cannot resume {run_dir} with {values}: a resume continues the run's own settings; "
                             f"leave these out (a resume may change only {', '.join(f'{k}=' for k in may_change)})")
    return {**saved, **{k: asked[k] for k in given if k in asked}}


def check_resume_config(run_dir: Path, config: dict[str, Any], may_change: Collection[str]) -> None:
    """Refuse to resume ``run_dir`` unless its config.json equals ``config`` outside ``may_change``.

    The error names every field that differs (present in only one of the two counts as differing), or,
    for a folder of the other command (``rl`` / ``train``), the command that continues it; a config.json
    that lacks fields ``config`` has was written by an older version, and the error says so.
    """
    saved = saved_config(run_dir, config)
    lacks = sorted(k for k in set(config) - set(saved) if k not in may_change)
    if lacks:
        raise RunFolderError(f"cannot resume {run_dir}: it was written by an older memory-envs (its config.json "
                             f"lacks {lacks}, which this version records); finish it with the version that wrote "
                             "it, or start it again with overwrite=True")
    differ = sorted(k for k in set(saved) | set(config) if k not in may_change and saved.get(k) != config.get(k))
    if differ:
        raise RunFolderError(f"cannot resume {run_dir}: its config differs in {differ}")


def open_for_resume(run_dir: Path, config: dict[str, Any], may_change: Collection[str]) -> RunLock:
    """Check that ``run_dir`` can be resumed with ``config`` and return its held lock (nothing written)."""
    check_resume_config(run_dir, config, may_change)
    return RunLock(run_dir)


def append_metrics(run_dir: Path, line: dict[str, Any]) -> None:
    """Append one evaluation's ``line`` to metrics.jsonl as strict JSON (non-finite numbers as null)."""
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(strict_json(line), allow_nan=False) + "\n")


def _metrics_lines(run_dir: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The complete lines of metrics.jsonl, raw and parsed (a torn last line, from a kill mid-write, is
    left out); RunFolderError naming the file and line if a complete line is not a JSON object."""
    path = run_dir / "metrics.jsonl"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} cannot be read ({error})") from None
    raw = text.split("\n")[:-1]  # the part after the last newline is torn (or empty)
    parsed = []
    for number, line in enumerate(raw, 1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise RunFolderError(f"{path}, line {number}: not valid JSON ({error})") from None
        if not isinstance(value, dict):
            raise RunFolderError(f"{path}, line {number}: must be a JSON object, found {type(value).__name__}")
        parsed.append(value)
    return raw, parsed


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The complete lines of metrics.jsonl as dicts (see :func:`_metrics_lines`)."""
    return _metrics_lines(run_dir)[1]


def check_metrics(run_dir: Path, lines: int, state: Path | None = None) -> None:
    """Keep the first ``lines`` lines of metrics.jsonl (what the saved state ``state`` counted): drop
    those written after it, a torn one included. RunFolderError if it holds fewer complete lines."""
    path = run_dir / "metrics.jsonl"
    raw = _metrics_lines(run_dir)[0] if path.exists() or lines else []
    if len(raw) < lines:
        raise RunFolderError(f"{path} holds {len(raw)} complete lines but the saved state in {state} counts "
                             f"{lines}: it was cut or edited; nothing was changed (restore it, or start again "
                             "with overwrite=True)")
    atomic_write_text(path, "".join(line + "\n" for line in raw[:lines]))


def save_last(run_dir: Path, write: Callable[[Path], None]) -> None:
    """Replace ``last/`` with what ``write(folder)`` puts in a fresh folder; a complete copy exists throughout.

    ``write`` fills ``last.new/``; then ``last/`` becomes ``last.old/`` (the fallback if ``last/`` is
    found damaged later) and ``last.new/`` becomes ``last/``.
    """
    last, new, old = (run_dir / name for name in ("last", "last.new", "last.old"))
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    write(new)
    if last.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(last, old)
    os.replace(new, last)


def saved_states(run_dir: Path) -> list[Path]:
    """The folders that may hold a resume state, newest first: ``last/``, then ``last.old/``."""
    return [run_dir / name for name in ("last", "last.old") if (run_dir / name).is_dir()]


def restore_last(run_dir: Path, restore: Callable[[Path], Any]) -> tuple[Path, Any] | None:
    """``restore(folder)`` on ``last/``, or on ``last.old/`` if ``last/`` is damaged (``restore`` raised
    a ValueError naming the file); returns the folder used and what ``restore`` returned.

    None if neither exists (a run killed before its first saved state). If every copy is damaged,
    a RunFolderError lists what is wrong with each.
    """
    errors = []
    for folder in saved_states(run_dir):
        try:
            return folder, restore(folder)
        except CheckpointVersionError as error:  # not damaged: last.old/ is of the same version
            raise RunFolderError(f"cannot resume {run_dir}: {error}") from None
        except ValueError as error:
            errors.append(str(error))
    if errors:
        raise RunFolderError(f"cannot resume {run_dir}: every saved state is damaged: " + "; ".join(errors))
    return None


def check_restart(run_dir: Path) -> str:
    """Refuse a resume of ``run_dir`` that has no saved state but holds results a restart would lose; else
    return the line that says the run starts again from the beginning."""
    results = [name for name in ("summary.json", "model.zip") if (run_dir / name).exists()]
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        results.append("checkpoints/")
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file() and metrics.stat().st_size:
        results.append("metrics.jsonl")
    if results:
        raise RunFolderError(f"cannot resume {run_dir}: it has no saved state (last/ is missing) but holds "
                             f"results ({', '.join(sorted(results))}); nothing was changed. Restore last/, or "
                             "start the run again with overwrite=True (this deletes those results), or use another "
                             "run folder")
    return (f"{run_dir} has no saved state yet (its run stopped before its first evaluation): resume starts "
            "it again from the beginning")


__all__ = ["MARKER", "RunFolderError", "RunLock", "append_metrics", "atomic_write_text", "check_metrics",
           "check_new", "check_restart", "check_resume_config", "create_run_folder", "not_a_folder",
           "open_for_resume", "overwrite_refusal", "read_json", "read_metrics", "restore_last", "resume_settings",
           "save_last", "saved_config", "saved_states", "solved_text", "strict_json", "write_config", "write_csv",
           "write_json", "written_by"]
