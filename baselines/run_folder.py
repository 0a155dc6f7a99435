"""The run folder that the supervised trainer and the RL baseline share, and its crash-safe writes.

Both write::

    config.json      the run's config (resume checks it)
    metrics.jsonl    one JSON line per evaluation, appended
    last/            the resume state after the latest evaluation (contents up to the caller)

``last/`` is replaced in one rename: it is written to ``last.new/`` first, and ``last.old/`` holds
the previous copy between the two renames, so a kill at any moment leaves one complete copy that
:func:`find_last` finds. The resume state records how many metrics lines it has seen;
:func:`truncate_metrics` drops the lines a killed run wrote after it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Collection

from agents.checkpoint import atomic_write


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked (exists, missing, or from another config)."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename, so readers never see half a file."""
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Write ``config`` (JSON-able) as the folder's config.json."""
    atomic_write_text(run_dir / "config.json", json.dumps(config, indent=2))


def create_run_folder(run_dir: Path, config: dict[str, Any], overwrite: bool) -> None:
    """Start a new run in ``run_dir``: config.json and an empty metrics.jsonl.

    A non-empty folder is refused unless ``overwrite``, which deletes it first.
    """
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise RunFolderError(f"run folder {run_dir} is not empty: pass resume to continue it or "
                                 "overwrite to replace it")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, config)
    atomic_write_text(run_dir / "metrics.jsonl", "")


def check_resume_config(run_dir: Path, config: dict[str, Any], may_change: Collection[str]) -> None:
    """Refuse to resume ``run_dir`` unless its config.json equals ``config`` outside ``may_change``.

    The error names every field that differs (present in only one of the two counts as differing).
    """
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise RunFolderError(f"cannot resume: {run_dir} is not a run folder (no config.json)")
    saved = json.loads(config_path.read_text())
    differ = sorted(k for k in set(saved) | set(config) if k not in may_change and saved.get(k) != config.get(k))
    if differ:
        raise RunFolderError(f"cannot resume {run_dir}: its config differs in {differ}")


def append_metrics(run_dir: Path, line: dict[str, Any]) -> None:
    """Append one evaluation's ``line`` to metrics.jsonl."""
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def truncate_metrics(run_dir: Path, lines: int) -> None:
    """Keep the first ``lines`` lines of metrics.jsonl: drop those written after the saved state."""
    metrics = run_dir / "metrics.jsonl"
    kept = metrics.read_text().splitlines(keepends=True)[:lines] if metrics.exists() else []
    atomic_write_text(metrics, "".join(kept))


def save_last(run_dir: Path, write: Callable[[Path], None]) -> None:
    """Replace ``last/`` with what ``write(folder)`` puts in a fresh folder; a complete copy exists throughout.

    ``write`` fills ``last.new/``; then ``last/`` becomes ``last.old/`` and ``last.new/`` becomes
    ``last/``. A kill between the two renames leaves only ``last.old/``, which :func:`find_last` takes.
    """
    last, new, old = (run_dir / name for name in ("last", "last.new", "last.old"))
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    write(new)
    if last.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(last, old)
    os.replace(new, last)
    shutil.rmtree(old, ignore_errors=True)


def find_last(run_dir: Path, marker: str) -> Path | None:
    """The complete resume state: ``last/``, else ``last.old/`` (killed between the renames of
    :func:`save_last`), whichever holds the file ``marker``; None if neither (killed before the first save)."""
    for name in ("last", "last.old"):
        if (run_dir / name / marker).is_file():
            return run_dir / name
    return None


__all__ = ["RunFolderError", "append_metrics", "atomic_write_text", "check_resume_config", "create_run_folder",
           "find_last", "save_last", "truncate_metrics", "write_config"]
