"""The paper's authors' published networks as run folders of this project: :func:`read_stats` (their
``stats.npy``, read without running code) and :func:`import_authors` (one of their network folders ->
a run folder that ``memory-envs analyze`` and ``plot`` read unchanged).

Their folder ``{curriculum}_{task}[_affixes]_network_{k}`` (LevinaLab/rnn_timescale_public,
``trained_models/``) holds one file ``rnn_N{a}_N{b}`` per solved curriculum step, ``rnn_init`` (the
untrained network) and ``stats.npy``: ``np.save`` of the dict {'loss': [one float per epoch],
'accuracy': [per-head accuracy in percent, one array per epoch]}. An epoch is 600 training steps
followed by 50 test batches; their curriculum advances when the mean and the newest head exceed 98%.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

import agents
from agents.authors import FILE_NAME, load_authors, ns_from_name, variant_from_folder
from baselines.run_folder import (
    atomic_write_text, check_new, create_run_folder, overwrite_refusal, strict_json, write_json,
)
from baselines.trainer import tau_stats

#: Their training: 600 steps per epoch, then 50 test batches of 256; advance above 98%.
STEPS_PER_EPOCH = 600
THRESHOLD = 98.0
CURRICULA = ("single", "multi", "sliding")
TASKS = ("parity", "dms")
_SLIDING = re.compile(r"sliding_(\d+)_(\d+)_")

#: The only globals stats.npy's pickle may name: numpy's array and scalar reconstructors and dtype.
_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}


class _NumpyOnly(pickle.Unpickler):
    """An unpickler that builds numpy arrays and scalars and builtin containers, and refuses any other
    global (so no function a file names is ever called)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed (only numpy arrays, scalars "
                                         "and builtin containers)")
        return super().find_class(module, name)


def read_stats(path: str | os.PathLike) -> dict[str, list]:
    """Their ``stats.npy``: {"loss": [float per epoch], "accuracy": [np.ndarray of per-head accuracy in
    percent, per epoch]}. The pickle inside is read by an unpickler that admits numpy arrays and
    scalars and builtin containers and nothing else; anything else is a ValueError naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            if dtype != np.dtype(object) or shape != ():
                raise ValueError(f"expected a pickled dict (a 0-d object array), found dtype {dtype} shape {shape}")
            value = _NumpyOnly(io.BytesIO(f.read())).load()
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, TypeError, AttributeError) as error:
        raise ValueError(f"{path} is not one of the authors' stats.npy files ({error})") from None
    stats = value.item() if isinstance(value, np.ndarray) and value.shape == () else value
    if not isinstance(stats, dict) or not all(isinstance(stats.get(k), list) for k in ("loss", "accuracy")):
        raise ValueError(f"{path}: expected a dict with lists 'loss' and 'accuracy', got {type(stats).__name__}")
    if len(stats["loss"]) != len(stats["accuracy"]):
        raise ValueError(f"{path}: 'loss' has {len(stats['loss'])} epochs, 'accuracy' {len(stats['accuracy'])}")
    try:
        loss = [float(v) for v in stats["loss"]]
        accuracy = [np.asarray(a, dtype=np.float64).reshape(-1) for a in stats["accuracy"]]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: 'loss' and 'accuracy' must hold numbers ({error})") from None
    return {"loss": loss, "accuracy": accuracy}


def curriculum_from_folder(name: str) -> tuple[str, int, int]:
    """(curriculum, window, drop) from their folder name: cumulative -> multi, single, sliding_{W}_{F}."""
    if name.startswith("cumulative_"):
        return "multi", 5, 1
    if name.startswith("single_"):
        return "single", 5, 1
    match = _SLIDING.match(name)
    if match:
        return "sliding", int(match.group(1)), int(match.group(2))
    raise ValueError(f"cannot tell the curriculum from the folder name {name!r} (their names start with "
                     "cumulative_, single_ or sliding_W_F_): pass curriculum, one of " + ", ".join(CURRICULA))


def task_from_folder(name: str) -> str:
    """"parity" or "dms", the task token of their folder name."""
    tokens = name.split("_")
    found = [t for t in TASKS if t in tokens]
    if len(found) != 1:
        raise ValueError(f"cannot tell the task from the folder name {name!r}: pass task, one of {list(TASKS)}")
    return found[0]


def epochs_to_ns(accuracy: list[np.ndarray], curriculum: str, start_ns: list[int], drop: int = 1
                 ) -> tuple[list[list[int]], dict[int, int]]:
    """Replay their curriculum over the per-epoch accuracies: the active Ns of every epoch and the epoch
    (1-based) at which each N was first solved (mean and newest head above 98%)."""
    ns, active, solved = list(start_ns), [], {}
    for epoch, acc in enumerate(accuracy, start=1):
        if acc.size != len(ns):
            raise ValueError(f"epoch {epoch}: {acc.size} head accuracies, but the {curriculum} curriculum has "
                             f"{len(ns)} active Ns {ns} then (start Ns {start_ns})")
        active.append(list(ns))
        if acc.mean() > THRESHOLD and acc[-1] > THRESHOLD:
            solved.setdefault(ns[-1], epoch)
            if curriculum == "single":
                ns = [ns[0] + 1]
            elif curriculum == "multi":
                ns = ns + [ns[-1] + 1]
            else:
                ns = ns[drop:] + [ns[-1] + 1 + i for i in range(drop)]
    return active, solved


def import_authors(src_dir: str | os.PathLike, out_dir: str | os.PathLike, *, curriculum: str | None = None,
                   task: str | None = None, variant: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Turn one of their network folders into a run folder of this project in ``out_dir``.

    Writes config.json, ``checkpoints/nNNN`` per ``rnn_N{a}_N{b}`` file (keyed by b, the N it solved),
    ``checkpoints/init`` from ``rnn_init`` (heads of the first curriculum step; analyze skips it),
    metrics.jsonl from stats.npy (one line per epoch, step = 600 x epoch, accuracy as a fraction) and
    summary.json. ``curriculum``, ``task``, ``variant``: default from the folder name. Every file is read
    and checked before ``out_dir`` is created; ``out_dir`` must be missing or empty (or, with
    ``overwrite``, a run folder of this project holding nothing else). Returns the summary.
    """
    src = Path(src_dir)
    out = Path(out_dir)
    if not src.is_dir():
        raise ValueError(f"src_dir {src} is not a folder")
    if curriculum is None:
        curriculum, window, drop = curriculum_from_folder(src.name)
    elif curriculum not in CURRICULA:
        raise ValueError(f"curriculum must be one of {list(CURRICULA)}, got {curriculum!r}")
    else:
        window, drop = (curriculum_from_folder(src.name)[1:] if _SLIDING.match(src.name) else (5, 1))
    task = task_from_folder(src.name) if task is None else task
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    variant = variant_from_folder(src) if variant is None else variant
    files = sorted((p for p in src.iterdir() if FILE_NAME.fullmatch(p.name)), key=lambda p: ns_from_name(p)[-1])
    if not files:
        raise ValueError(f"{src} holds no network files rnn_N{{a}}_N{{b}} (the authors' trained_models/<network>/)")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        refusal = overwrite_refusal(out)
        raise ValueError(f"out_dir {out} is not empty: pick a new folder" + (
            ", or pass overwrite=True to replace it (a run folder made by memory-envs)" if refusal is None
            else f" ({refusal})"))
    check_new(out, overwrite)
    models = {ns_from_name(p)[-1]: load_authors(p, variant=variant) for p in files}
    first_ns = ns_from_name(files[0])
    start_ns = ({"single": first_ns[:1], "multi": first_ns[:1]}.get(curriculum)
                or list(range(first_ns[0], first_ns[0] + window)))
    init = load_authors(src / "rnn_init", start_ns, variant=variant) if (src / "rnn_init").is_file() else None
    stats_path = src / "stats.npy"
    lines: list[dict[str, Any]] = []
    solved: dict[int, int] = {}
    if stats_path.is_file():
        stats = read_stats(stats_path)
        active, solved = epochs_to_ns(stats["accuracy"], curriculum, start_ns, drop)
        for epoch, (ns, acc, loss) in enumerate(zip(active, stats["accuracy"], stats["loss"]), start=1):
            lines.append({"step": STEPS_PER_EPOCH * epoch, "time": None, "epoch": epoch, "ns": ns,
                          "accuracy": {str(n): float(a) / 100 for n, a in zip(ns, acc)}, "loss": loss,
                          "tau_mean": None, "tau_min": None, "tau_max": None})
    hidden = next(iter(models.values())).core.hidden_size
    config = {"task": task, "curriculum": curriculum, "start_n": start_ns[0], "target_n": None, "window": window,
              "drop": drop, "threshold": THRESHOLD / 100, "core": "leaky_mod" if variant == "mod" else "leaky",
              "hidden_size": hidden, "tau_init": [1.0, 2.0], "train_tau": True, "tau_param": "clamp",
              "core_options": {}, "p": None, "optimizer": "sgd", "lr": 0.05, "momentum": 0.1, "nesterov": True,
              "clip_grad": 2.0, "batch_size": 256, "eval_every": STEPS_PER_EPOCH, "eval_batches": 50,
              "max_steps": None, "max_seconds": None, "seed": None, "device": "cpu",
              "imported_from": {"authors": str(src.resolve()), "files": [p.name for p in files]}}
    summary = {"max_n": max(models), "steps": lines[-1]["step"] if lines else None, "seconds": None,
               "stopped_because": "imported", "active_ns": lines[-1]["ns"] if lines else None,
               "steps_to_n": {str(n): STEPS_PER_EPOCH * e for n, e in sorted(solved.items())},
               "epochs_to_n": {str(n): e for n, e in sorted(solved.items())},
               "tau_mean_at_n": {str(n): tau_stats(m.core)["tau_mean"] for n, m in sorted(models.items())},
               "task": task, "curriculum": curriculum, "core": config["core"], "hidden_size": hidden}
    lock = create_run_folder(out, config, overwrite)
    try:
        (out / "checkpoints").mkdir()
        for n, model in models.items():
            agents.save(model, out / "checkpoints" / f"n{n:03d}")
        if init is not None:
            agents.save(init, out / "checkpoints" / "init")
        atomic_write_text(out / "metrics.jsonl",
                          "".join(json.dumps(strict_json(line), allow_nan=False) + "\n" for line in lines))
        write_json(out / "summary.json", summary)
    finally:
        lock.release()
    return summary


__all__ = ["CURRICULA", "STEPS_PER_EPOCH", "epochs_to_ns", "import_authors", "read_stats"]
