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

Nothing here writes through, follows or deletes a symbolic link inside a run folder, or deletes what
memory-envs did not write: :data:`LAYOUT` describes, at every depth, the names and types runs write;
``overwrite`` replaces a non-empty folder only if it holds the marker (or is a folder whose setup a
kill or a full disk cut short: :func:`unfinished`) and nothing but what :data:`LAYOUT` allows, and never
the current folder or one above it; a resume refuses a folder whose run-made entries hold anything
else; files are written by :func:`agents.checkpoint.atomic_write` (a link in the way is refused) and the
lock and metrics are opened with ``O_NOFOLLOW``. A failed write (a full disk) is a
:class:`~agents.checkpoint.WriteError`: one line naming the path and the bytes it needed.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

from agents.checkpoint import (
    MAX_JSON_BYTES, CheckpointVersionError, atomic_write, parse_json, read_json_file, refuse_link, write_all,
    write_error,
)

MARKER = ".memory-envs-run"
MARKER_TEXT = "memory-envs run folder: `--overwrite` may replace this folder\n"
LOCK = ".lock"
FILE = "file"
"""A :data:`LAYOUT` entry that is a regular file (any other entry is a folder's own layout)."""
Layout = dict[str, Any]
"""A folder's layout: a regular expression a name must match in full -> :data:`FILE` or the layout of a folder."""
CHECKPOINT: Layout = {r"model\.json|model\.safetensors": FILE}
SAVED_STATE: Layout = {r"model\.json|model\.safetensors|trainer\.json|trainer\.safetensors"  # train
                       r"|model\.zip|state\.json|rng\.json|rng\.safetensors": FILE}  # rl
LAYOUT: Layout = {
    re.escape(MARKER): FILE, re.escape(LOCK): FILE,
    r"config\.json|metrics\.jsonl|summary\.json|model\.zip|heldout\.json|timescales\.json|rlcard\.json": FILE,
    r".+\.png": FILE,  # figures
    r"last|last\.new|last\.old": SAVED_STATE,
    "checkpoints": {r"n\d{3,}|final|init": CHECKPOINT},
    "tb": {r"rl_\d+": {r"events\.out\.tfevents\..+": FILE}},  # SB3's TensorBoard writer (tb_log_name "rl")
    "analysis": {r".+\.(csv|png)": FILE},  # memory-envs analyze
}
"""Everything a run of this project (train, rl, benchmark, import-authors, analyze, plot) writes in its folder,
at every depth; in any folder of it also :data:`TEMPORARY` files. ``overwrite`` deletes a folder holding
nothing else, and a resume refuses run-made entries holding anything else."""
TEMPORARY = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")
"""The temporary files of :func:`agents.checkpoint.atomic_write`, which a kill can leave in any folder."""
SETUP = re.compile(rf"{re.escape(MARKER)}|{re.escape(LOCK)}|\.(memory-envs-run|config\.json)\.[0-9a-f]{{12}}\.tmp")
"""What :func:`create_run_folder` writes before config.json: a folder holding nothing else is :func:`unfinished`."""


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked (exists, missing, locked, damaged, from another config)."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename, so readers never see half a file
    (:func:`agents.checkpoint.atomic_write`: a link in the way is refused, a full disk is a WriteError)."""
    atomic_write(Path(path), text.encode())


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
    """``rows`` (dicts with the keys of the first) as a CSV table with a header, written atomically (no rows:
    an empty file)."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def read_json(path: Path, kind: type = dict) -> Any:
    """Read the JSON file ``path``, which must hold a ``kind``; RunFolderError naming the file otherwise (also for
    a file bigger or deeper than any this project writes: ``agents.checkpoint.read_json_file``)."""
    try:
        value = read_json_file(Path(path))
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing") from None
    except (OSError, ValueError) as error:  # ValueError: not JSON, too big or nested too deep
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


LINK_RULE = ("memory-envs never writes through, follows or deletes a symbolic link inside a run folder, nor deletes "
             "what a run did not write")


def _read_holder(fd: int) -> str:
    """The pid the lock file ``fd`` holds; a holder that has just taken the lock writes it within moments."""
    for _ in range(100):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text:
            return text
        time.sleep(0.01)
    return "unknown"


def _in_use(run_dir: Path, holder: str) -> str:
    return (f"run folder {run_dir} is in use by another process (pid {holder}): wait for it to finish or stop it; "
            "one process writes a run folder at a time")


class RunLock:
    """An exclusive OS lock on ``RUN/.lock`` (``fcntl.flock``), held while one process writes the folder.

    The OS drops it when the process ends, even by SIGKILL, so a stale lock never blocks a resume.
    A second holder gets a RunFolderError naming the first one's pid. ``.lock`` is opened with
    ``O_NOFOLLOW``: a link there is refused, never written through.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as error:
            if os.path.islink(self.path) or self.path.is_dir():
                raise RunFolderError(f"cannot lock {run_dir}: {self.path} is a "
                                     f"{'symbolic link' if os.path.islink(self.path) else 'folder'} "
                                     f"({LINK_RULE}); nothing was changed") from None
            raise write_error(self.path, error) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_holder(fd)
            os.close(fd)
            raise RunFolderError(_in_use(run_dir, pid)) from None
        self._file: Any = os.fdopen(fd, "rb+", buffering=0)  # closed (the lock let go) when garbage-collected too
        pid = f"{os.getpid()}\n".encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, pid, 0)
        except OSError as error:
            self.release()
            raise write_error(self.path, error, len(pid)) from None

    def release(self) -> None:
        """Let another process write the folder (also done by the OS when this process ends)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def holder(run_dir: Path) -> str | None:
    """The pid of the process holding ``run_dir``'s lock, or None if no process does. Writes nothing (a shared
    lock is tried on the existing ``.lock`` and dropped at once)."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _match(layout: Layout, name: str) -> Layout | str | None:
    """What ``layout`` says ``name`` is (:data:`FILE` or a folder's layout); a temporary file is a FILE; None
    for a name no run writes there."""
    for pattern, node in layout.items():
        if re.fullmatch(pattern, name):
            return node
    return FILE if TEMPORARY.fullmatch(name) else None


def _entry_problems(path: Path, node: Layout | str | None, run_dir: Path) -> Iterator[str]:
    """What is wrong with ``path`` if runs write ``node`` there (a link, the wrong type, anything foreign
    inside; None: runs write nothing there), as ``RELATIVE/PATH (why)``."""
    where = path.relative_to(run_dir)
    if node is None:
        yield str(where)
    elif path.is_symlink():
        yield f"{where} (a symbolic link)"
    elif node == FILE and not path.is_file():
        yield f"{where} ({'a folder' if path.is_dir() else 'not a regular file'}, where runs write a file)"
    elif node != FILE and not path.is_dir():
        yield f"{where} (not a folder, where runs write a folder)"
    elif node != FILE:
        yield from _folder_problems(path, node, run_dir, foreign=False)


def _folder_problems(folder: Path, layout: Layout, run_dir: Path, foreign: bool) -> Iterator[str]:
    """:func:`_entry_problems` of every entry of ``folder``; a name ``layout`` does not hold is a problem
    unless ``foreign`` (left alone)."""
    for name in sorted(os.listdir(folder)):
        node = _match(layout, name)
        if node is not None or not foreign:
            yield from _entry_problems(folder / name, node, run_dir)


def layout_problems(run_dir: Path, foreign_at_top: bool = False) -> list[str]:
    """Every entry of ``run_dir`` that is not as :data:`LAYOUT` says runs write it, at every depth, as
    ``RELATIVE/PATH (why)``: a symbolic link, a file where runs write a folder or the reverse, a name no run
    writes. ``foreign_at_top``: names at the top that no run writes are left alone (a resume keeps the
    user's notes beside a run; it never touches them)."""
    return list(_folder_problems(Path(run_dir), LAYOUT, Path(run_dir), foreign_at_top))


def _listing(problems: list[str]) -> str:
    return problems[0] + (f", and {len(problems) - 1} more" if len(problems) > 1 else "")


def _delete(path: Path) -> None:
    """Delete ``path``, a folder's contents first; a link is never followed (callers check it is not one)."""
    if path.is_dir() and not path.is_symlink():
        for name in os.listdir(path):
            _delete(path / name)
        path.rmdir()
    else:
        path.unlink()


def remove(path: Path, node: Layout | str | None, run_dir: Path) -> None:
    """Delete ``path`` (in ``run_dir``) if it exists and holds exactly what runs write there (``node``, a
    :data:`LAYOUT` entry); RunFolderError naming the first other entry, and nothing deleted, otherwise."""
    if not os.path.lexists(path):
        return
    problems = list(_entry_problems(path, node, run_dir))
    if problems:
        raise RunFolderError(f"cannot replace {path}: {run_dir} holds {_listing(problems)} ({LINK_RULE}); move it "
                             "out, then run again; nothing was deleted")
    _delete(path)


def unfinished(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a folder :func:`create_run_folder` started and never finished setting up (a kill
    or a full disk before config.json was written): it holds ``.lock`` (a regular file holding a pid or
    nothing) and nothing but the other :data:`SETUP` files. Such a folder is this project's: a new run, a
    resume and ``overwrite`` all take it."""
    try:
        names = os.listdir(run_dir)
        if LOCK not in names or not all(SETUP.fullmatch(name) and (run_dir / name).is_file()
                                        and not (run_dir / name).is_symlink() for name in names):
            return False
        fd = os.open(run_dir / LOCK, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            text = os.read(fd, 32)
        finally:
            os.close(fd)
    except OSError:
        return False
    return re.fullmatch(rb"\d*\n?", text) is not None


def make_output_folder(path: Path, name: str) -> Path:
    """Create the folder ``path`` (with its parents) that the argument ``name`` gives, as the first write of a
    command; a folder that cannot be created (a read-only or virtual file system, a file in the way) is a
    RunFolderError in one line naming ``name``, instead of an OSError traceback."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"{name} must be a folder this process can create; {path} cannot be created "
                             f"({error.strerror or error})") from None
    return path


def solved_text(max_n: int | None) -> str:
    """A summary's ``max_n`` as the commands, logs and tables write it: ``"none"`` where no N was solved."""
    return "none" if not max_n else str(max_n)


def check_open_mode(resume: bool, overwrite: bool) -> None:
    """Refuse ``resume`` with ``overwrite``: one continues a run folder, the other replaces it."""
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True exclude each other: resume continues the run folder, "
                         "overwrite replaces it")


def overwrite_refusal(run_dir: Path) -> str | None:
    """Why ``overwrite`` would refuse the non-empty ``run_dir`` (with what to do instead), or None if it may:
    the current folder or one above it; a folder without the marker (unless :func:`unfinished`); anything in it,
    at any depth, that :data:`LAYOUT` does not allow (the first is named). Reads only."""
    here = Path.cwd().resolve()
    if run_dir.resolve() in (here, *here.parents):
        return f"overwrite refuses {run_dir}: it is the current folder or holds it; pick a run folder of its own"
    marker = run_dir / MARKER
    if not (marker.is_file() and not marker.is_symlink()) and not unfinished(run_dir):
        return (f"overwrite refuses {run_dir}: it is not a run folder made by memory-envs (no {MARKER} marker), so "
                "it may hold your own files; delete it yourself or pick another run folder")
    problems = layout_problems(run_dir)
    if problems:
        return (f"overwrite refuses {run_dir}: it holds files no run writes ({_listing(problems)}); it deletes only "
                "what runs write, and never a symbolic link: move them out or pick another run folder")
    return None


def _new_refusal(run_dir: Path, overwrite: bool) -> str | None:
    """Why a new run may not start in ``run_dir`` (see :func:`check_new`), or None. Reads only."""
    if run_dir.exists() and not run_dir.is_dir():
        return f"run folder {run_dir} is a file"
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return None
    refusal = overwrite_refusal(run_dir)
    if overwrite or (refusal is None and unfinished(run_dir)):
        return refusal
    resumable = (run_dir / "config.json").is_file()
    if resumable and refusal is None:
        return (f"run folder {run_dir} is not empty: pass resume=True to continue it or overwrite=True to "
                "replace it")
    if resumable:
        return (f"run folder {run_dir} is not empty: pass resume=True to continue its run, or pick another run folder "
                f"({refusal})")
    if refusal is None:
        return (f"run folder {run_dir} is not empty and holds no run to resume (no config.json): pass "
                "overwrite=True to replace it or pick another run folder")
    return f"run folder {run_dir} is not empty and holds no run to resume (no config.json), and {refusal}"


def check_new(run_dir: Path, overwrite: bool) -> None:
    """Refuse (RunFolderError) to start a new run in ``run_dir`` unless it is missing, empty or
    :func:`unfinished`, or ``overwrite`` and it is a run folder of this project holding nothing else. A
    folder another process writes is refused as in use, with its pid. A refusal offers only what would be
    accepted: ``resume`` where the folder holds a run, ``overwrite`` where it may replace it. Reads only."""
    refusal = _new_refusal(run_dir, overwrite)
    if refusal is not None:
        pid = holder(run_dir)  # two runs started at once: the other one is setting the folder up
        raise RunFolderError(refusal if pid is None else _in_use(run_dir, pid))


def create_run_folder(run_dir: Path, config: dict[str, Any], overwrite: bool) -> RunLock:
    """Start a new run in ``run_dir`` (checked by :func:`check_new`) and return its held lock.

    Takes the lock first, checks the folder again under it (another process may have set it up meanwhile),
    then writes the marker, config.json and an empty metrics.jsonl; with ``overwrite`` (or in an
    :func:`unfinished` folder), first deletes the entries of the run it replaces, each checked against
    :data:`LAYOUT`. A folder whose setup is cut short (a kill, a full disk) is :func:`unfinished`.
    """
    check_new(run_dir, overwrite)
    make_output_folder(run_dir, "run_dir")
    lock = RunLock(run_dir)
    try:
        refusal = _new_refusal(run_dir, overwrite)
        if refusal is not None:
            raise RunFolderError(refusal)
        for name in sorted(os.listdir(run_dir)):
            if name != LOCK:
                remove(run_dir / name, _match(LAYOUT, name), run_dir)
        atomic_write_text(run_dir / MARKER, MARKER_TEXT)
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
    no run, a link or a foreign entry among its run-made entries (:data:`LAYOUT`), or a run of
    the other command (``rl`` / ``train``: the error names the command that continues it)."""
    config_path = run_dir / "config.json"
    if not config_path.is_file() and not config_path.is_symlink():
        raise RunFolderError(f"cannot resume: {run_dir} is not a run folder (no config.json)")
    problems = layout_problems(run_dir, foreign_at_top=True)
    if problems:
        raise RunFolderError(f"cannot resume {run_dir}: it holds {_listing(problems)} ({LINK_RULE}); move it out "
                             "(a link: put what it points to in its place), then resume; nothing was changed")
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
    settings. An :func:`unfinished` folder holds no settings yet: ``asked`` is what its resume sets up. Reads only."""
    if unfinished(run_dir):
        return dict(asked)
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
    that lacks fields ``config`` has was written by an older version, and the error says so. An
    :func:`unfinished` folder passes: the resume sets it up. Reads only.
    """
    if unfinished(run_dir):
        return
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
    """Check that ``run_dir`` can be resumed with ``config`` and return its held lock (nothing written; an
    :func:`unfinished` folder is set up as a new run, which the resume then starts)."""
    check_resume_config(run_dir, config, may_change)
    if unfinished(run_dir):
        return create_run_folder(run_dir, config, overwrite=False)
    return RunLock(run_dir)


def append_metrics(run_dir: Path, line: dict[str, Any]) -> None:
    """Append one evaluation's ``line`` to metrics.jsonl as strict JSON (non-finite numbers as null); the file
    is opened with ``O_NOFOLLOW`` (a link is refused) and a failed write is a WriteError naming it."""
    path = run_dir / "metrics.jsonl"
    data = (json.dumps(strict_json(line), allow_nan=False) + "\n").encode()
    refuse_link(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
    except OSError as error:
        raise write_error(path, error, len(data)) from None


def _metrics_records(run_dir: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each complete line of metrics.jsonl as (the byte offset just after it, the line parsed), read one line at
    a time, so a long file never sits in memory whole. A torn last line, from a kill mid-write, is left out;
    RunFolderError naming the file and line for a complete line that is not a JSON object, and for a line
    longer than ``MAX_JSON_BYTES`` (no evaluation line comes near it), which is not read further."""
    path = run_dir / "metrics.jsonl"
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing") from None
    except OSError as error:
        raise RunFolderError(f"{path} cannot be read ({error})") from None
    with file:
        number = 0
        while True:
            try:
                line = file.readline(MAX_JSON_BYTES + 1)
            except OSError as error:
                raise RunFolderError(f"{path} cannot be read ({error})") from None
            if len(line) > MAX_JSON_BYTES:
                raise RunFolderError(f"{path}, line {number + 1}: longer than {MAX_JSON_BYTES} bytes, not a line this "
                                     "project wrote")
            if not line.endswith(b"\n"):
                return  # the end of the file: nothing after the last newline, or a torn line
            number += 1
            try:
                value = parse_json(line)
            except ValueError as error:  # not JSON, not UTF-8, or nested too deep
                raise RunFolderError(f"{path}, line {number}: not valid JSON ({error})") from None
            if not isinstance(value, dict):
                raise RunFolderError(f"{path}, line {number}: must be a JSON object, found {type(value).__name__}")
            yield file.tell(), value


def read_metrics(run_dir: Path, fields: Collection[str] | None = None) -> list[dict[str, Any]]:
    """The complete lines of metrics.jsonl as dicts (see :func:`_metrics_records`); with ``fields``, each keeps
    only those keys (a figure's), so what stays in memory is what the caller uses."""
    return [line if fields is None else {k: line[k] for k in fields if k in line}
            for _, line in _metrics_records(run_dir)]


def check_metrics(run_dir: Path, lines: int, state: Path | None = None) -> None:
    """Keep the first ``lines`` lines of metrics.jsonl (what the saved state ``state`` counted): drop
    those written after it, a torn one included. RunFolderError if it holds fewer complete lines. Reads
    the file one line at a time, up to line ``lines``; the lines after it are dropped unread, by copying
    the kept bytes to a new file that replaces it (a file holding just those lines is left as it is)."""
    path = run_dir / "metrics.jsonl"
    count, kept = 0, 0
    if lines:
        for kept, _ in _metrics_records(run_dir):
            count += 1
            if count == lines:
                break
    if count < lines:
        raise RunFolderError(f"{path} holds {count} complete lines but the saved state in {state} counts "
                             f"{lines}: it was cut or edited; nothing was changed (restore it, or start again "
                             "with overwrite=True)")
    if path.is_file() and path.stat().st_size == kept:
        return

    def kept_chunks() -> Iterator[bytes]:
        if kept:
            with open(path, "rb") as source:
                left = kept
                while left:
                    chunk = source.read(min(left, 1 << 16))
                    yield chunk
                    left -= len(chunk)

    atomic_write(path, kept_chunks(), kept)


def save_last(run_dir: Path, write: Callable[[Path], None]) -> None:
    """Replace ``last/`` with what ``write(folder)`` puts in a fresh folder; a complete copy exists throughout.

    ``write`` fills ``last.new/``; then ``last/`` becomes ``last.old/`` (the fallback if ``last/`` is
    found damaged later) and ``last.new/`` becomes ``last/``. Only saved states are deleted (:func:`remove`
    refuses a folder holding anything else, or a link).
    """
    last, new, old = (run_dir / name for name in ("last", "last.new", "last.old"))
    remove(new, SAVED_STATE, run_dir)
    try:
        new.mkdir()
    except OSError as error:
        raise write_error(new, error) from None
    write(new)
    refuse_link(last)
    try:
        if last.exists():
            remove(old, SAVED_STATE, run_dir)
            os.replace(last, old)
        os.replace(new, last)
    except OSError as error:
        raise write_error(last, error) from None


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


__all__ = ["FILE", "LAYOUT", "MARKER", "append_metrics", "atomic_write_text", "check_metrics", "check_new",
           "check_restart", "check_resume_config", "create_run_folder", "holder", "layout_problems",
           "make_output_folder", "not_a_folder", "open_for_resume", "overwrite_refusal", "read_json", "read_metrics",
           "remove", "restore_last", "resume_settings", "RunFolderError", "RunLock", "save_last", "saved_config",
           "saved_states", "solved_text", "strict_json", "unfinished", "write_config", "write_csv", "write_json",
           "written_by"]
