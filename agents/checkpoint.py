"""Checkpoints: weights in safetensors, configuration in JSON, in one directory, written atomically."""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .cores import KINDS, Core, core_class, make_core
from .model import MultiHeadModel
from .protocol import build_external_core, check_core, core_config, is_import_path

WEIGHTS = "model.safetensors"
CONFIG = "model.json"
FORMAT_VERSION = 2
"""The checkpoint format this version writes (model.json's ``format_version``). 2: Mamba with RMSNorm and
DeltaNet's convolution without bias, whose weights differ from those of format 1; every other core's
weights are the same in both, so a format-1 checkpoint of them loads."""
DTYPES = ("float16", "bfloat16", "float32", "float64")


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write via `write(tmp_path)` to a temp file in path's directory, flush it to disk, then
    os.replace it in: readers see the old file or the new one, never half of one.

    The temp file is created as a plain ``open`` creates a file (mode 0666 less the user's umask), not
    0600 as ``tempfile.mkstemp`` would, and keeps that mode if ``write`` replaces the file (safetensors
    does): colleagues sharing the folder can read the results."""
    tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # O_EXCL: never another file
    mode = os.fstat(fd).st_mode & 0o777
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
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


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded: a file missing or damaged, or an import it may not do."""


class CheckpointVersionError(CheckpointError):
    """A checkpoint saved by another version of memory-envs whose weights this version's core cannot take."""


def older_version(directory: Path, version: int, kind: str, details: str,
                  remedy: str = "train it again with this version, or load it with the version that saved it"
                  ) -> CheckpointVersionError:
    """The one line for weights saved at format ``version`` (an older one) that this version's ``kind`` core
    cannot take: which version wrote them and what to do (``remedy``)."""
    return CheckpointVersionError(
        f"{directory} was saved by an older memory-envs (format {version}; this version writes {FORMAT_VERSION}) "
        f"and the {kind!r} core's weights have changed since ({details}): {remedy}")


def _check_state(expected: dict[str, torch.Tensor], found: dict[str, tuple[int, ...]], where: Path,
                 meta: dict[str, Any], kind: str) -> None:
    """Refuse weights that are not the model's: CheckpointVersionError where an older format explains it."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    shapes = [f"{k}: checkpoint {found[k]}, model {tuple(v.shape)}"
              for k, v in expected.items() if k in found and found[k] != tuple(v.shape)]
    if not (missing or extra or shapes):
        return
    details = f"missing tensors {missing}, unexpected tensors {extra}, wrong shapes {shapes}"
    if meta["format_version"] < FORMAT_VERSION:
        raise older_version(where.parent, meta["format_version"], kind, details)
    raise CheckpointError(f"checkpoint {where} does not match its configuration: {details}")


def _read_config(path: Path) -> dict[str, Any]:
    """model.json, checked for the fields :func:`load` uses; CheckpointError naming the file otherwise."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} must hold a JSON object, found {type(meta).__name__}")
    version = meta.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise CheckpointError(f"{path.parent} was saved by a newer memory-envs (checkpoint format {version}; this "
                              f"version reads formats 1 to {FORMAT_VERSION}): load it with a newer version")
    if version not in range(1, FORMAT_VERSION + 1) or isinstance(version, bool) or meta.get("type") not in (
            "MultiHeadModel", "core"):
        raise CheckpointError(f"{path}: unsupported checkpoint (format_version {version!r}, type {meta.get('type')!r})")
    if meta.get("dtype") not in DTYPES:
        raise CheckpointError(f"{path}: dtype must be one of {DTYPES}, got {meta.get('dtype')!r}")
    config = meta.get("config")
    core = config.get("core") if isinstance(config, dict) and meta["type"] == "MultiHeadModel" else config
    if not isinstance(core, dict) or not isinstance(core.get("kind"), str):
        raise CheckpointError(f"{path}: config must be an object with the core's settings (a 'kind' and its "
                              f"options), got {config!r:.200}")
    if meta["type"] == "MultiHeadModel" and not isinstance(config.get("heads"), list):
        raise CheckpointError(f"{path}: config.heads must be a list of Ns, got {config.get('heads')!r:.200}")
    return meta


def _implied_values(core: dict[str, Any]) -> int | None:
    """A lower bound on the values a built-in core's weights hold; None for an external core or odd sizes."""
    kind = core.get("kind")
    if kind not in KINDS:
        return None
    return core_class(kind).min_parameters(core)


def _weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor shapes in a safetensors file's header (nothing allocated); CheckpointError if damaged."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as error:  # safetensors raises its own SafetensorError (and OSError)
        raise CheckpointError(f"{path} is not a readable safetensors file ({error})") from None


def _core_builder(kind: str, core_class: type[nn.Module] | None, trust_import: bool, where: Path
                  ) -> Callable[..., nn.Module]:
    """How to build the core a checkpoint names: built-in by name; an external one only as the caller says."""
    if not is_import_path(kind):
        return lambda **config: make_core(**config)
    if core_class is not None:
        return lambda kind, **config: build_external_core(kind, cls=core_class, **config)
    if trust_import:
        return lambda **config: make_core(**config)
    raise CheckpointError(
        f"{where} names the external core {kind!r}: agents.load imports no module that a file names. If you "
        f"trust this checkpoint and its code, pass the class, agents.load(path, core_class=YourCore), or let it "
        f"import {kind.partition(':')[0]!r}: agents.load(path, trust_import=True)")


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
         core_class: type[nn.Module] | None = None, trust_import: bool = False) -> MultiHeadModel | nn.Module:
    """Rebuild the model saved in the directory `path` (no other information needed).

    Loading runs no code from the folder: a built-in core is built by name; an external core (an
    import path in model.json) only from ``core_class`` or, with ``trust_import=True``, by importing
    the path. Every damaged file raises a CheckpointError (a ValueError) naming it. Before a built-in core is built,
the sizes model.json asks for are checked against the weight file, so a small file cannot make it
allocate a large model.
    """
    directory = Path(path)
    for name in (CONFIG, WEIGHTS):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} is not a checkpoint: {name} is missing")
    meta = _read_config(directory / CONFIG)
    config = meta["config"]
    core_config_ = config["core"] if meta["type"] == "MultiHeadModel" else config
    build_core = _core_builder(core_config_["kind"], core_class, trust_import, directory / CONFIG)

    def build() -> nn.Module:
        core = build_core(**core_config_)
        if meta["type"] != "MultiHeadModel":
            return core
        return MultiHeadModel(core, config["heads"], classes=config.get("classes", 2))

    shapes = _weight_shapes(directory / WEIGHTS)
    implied, stored = _implied_values(core_config_), sum(math.prod(shape) for shape in shapes.values())
    if implied is not None and implied > stored:  # checked before anything of that size is allocated
        if meta["format_version"] < FORMAT_VERSION:
            raise older_version(directory, meta["format_version"], core_config_["kind"],
                                 f"its weights hold {stored} values, this version's core at least {implied}")
        raise CheckpointError(f"checkpoint {directory} does not match its weights: {CONFIG} asks for a "
                              f"{core_config_['kind']!r} core of hidden_size {core_config_.get('hidden_size')!r} "
                              f"(at least {implied} values, {4 * implied} bytes) but {WEIGHTS} holds {stored}")
    try:
        model = build()
    except (TypeError, ValueError, KeyError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{directory / CONFIG}: its configuration does not build a model ({error})") from None
    _check_state(model.state_dict(), shapes, directory / WEIGHTS, meta, core_config_["kind"])
    model = model.to(device=map_location, dtype=getattr(torch, meta["dtype"]))
    try:
        state = load_file(directory / WEIGHTS, device=str(map_location))
    except Exception as error:
        raise CheckpointError(f"{directory / WEIGHTS} is not a readable safetensors file ({error})") from None
    model.load_state_dict(state, strict=True)
    return model
