"""Checkpoints: weights in safetensors, configuration in JSON, in one directory, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file

from .cores import Core
from .model import MultiHeadModel
from .protocol import check_core, core_config

WEIGHTS = "model.safetensors"
CONFIG = "model.json"
FORMAT_VERSION = 1


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write via `write(tmp_path)` to a temp file in path's directory, flush it to disk, then
    os.replace it in: readers see the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save(model: MultiHeadModel | Core, path: str | os.PathLike) -> None:
    """Write `model` (a MultiHeadModel or a bare core) to the directory `path`."""
    if not isinstance(model, MultiHeadModel):
        try:
            check_core(model)
        except TypeError:
            raise TypeError(f"model must be a MultiHeadModel or a core, got {type(model).__name__}") from None
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    config = {"format_version": FORMAT_VERSION, "dtype": dtype,
              "type": type(model).__name__ if isinstance(model, MultiHeadModel) else "core",
              "config": model.to_config() if isinstance(model, MultiHeadModel) else core_config(model)}
    text = json.dumps(config, indent=2, sort_keys=True)
    atomic_write(directory / WEIGHTS, lambda tmp: save_file(state, tmp))
    atomic_write(directory / CONFIG, lambda tmp: Path(tmp).write_text(text))


def _check_state(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], where: Path) -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    shapes = [f"{k}: checkpoint {tuple(found[k].shape)}, model {tuple(v.shape)}"
              for k, v in expected.items() if k in found and found[k].shape != v.shape]
    if missing or extra or shapes:
        raise ValueError(f"checkpoint {where} does not match its configuration: missing tensors "
                         f"{missing}, unexpected tensors {extra}, wrong shapes {shapes}")


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> MultiHeadModel | Core:
    """Rebuild the model saved in the directory `path` (no other information needed)."""
    directory = Path(path)
    for name in (CONFIG, WEIGHTS):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} is not a checkpoint: {name} is missing")
    meta: dict[str, Any] = json.loads((directory / CONFIG).read_text())
    if meta.get("format_version") != FORMAT_VERSION or meta.get("type") not in ("MultiHeadModel", "core"):
        raise ValueError(f"{directory / CONFIG}: unsupported checkpoint (format_version "
                         f"{meta.get('format_version')!r}, type {meta.get('type')!r})")
    config = meta["config"]
    model = MultiHeadModel.from_config(config) if meta["type"] == "MultiHeadModel" else Core.from_config(config)
    model = model.to(device=map_location, dtype=getattr(torch, meta["dtype"]))
    state = load_file(directory / WEIGHTS, device=str(map_location))
    _check_state(model.state_dict(), state, directory / WEIGHTS)
    model.load_state_dict(state, strict=True)
    return model
