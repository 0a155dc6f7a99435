"""Checkpoints: weights in safetensors, configuration in JSON, in one directory, written atomically."""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors
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


class WriteError(OSError):
    """A file or folder that could not be written (a full disk, no permission, a symbolic link in the way):
    its message is one line naming the path and, for a file, the bytes it needed."""


MAX_JSON_BYTES = 1 << 20
"""The largest JSON file (and ``metrics.jsonl`` line) read, 1 MiB: the JSON files this project writes (configs,
summaries, resume states, model.json) are a few KiB, so a bigger one is refused unread instead of parsed into memory."""
MAX_JSON_DEPTH = 64
"""The deepest nesting of a JSON value read: this project writes a few levels; a deeper one is refused before any
code walks it (a file nested 100,000 deep would otherwise end in a RecursionError)."""


def parse_json(text: str | bytes) -> Any:
    """The JSON value in ``text`` if it nests at most :data:`MAX_JSON_DEPTH` deep; ValueError otherwise (a
    json.JSONDecodeError or UnicodeDecodeError for what is not JSON)."""
    try:
        value = json.loads(text)
    except RecursionError:  # json's own parser refuses nesting near Python's recursion limit
        value = None
        too_deep = True
    else:
        too_deep = False
        stack = [(value, 1)]
        while stack and not too_deep:  # a walk without recursion, so any depth is measured safely
            item, depth = stack.pop()
            if isinstance(item, (dict, list)):
                too_deep = depth > MAX_JSON_DEPTH
                stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    if too_deep:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep: not a file this project wrote")
    return value


def read_json_file(path: Path) -> Any:
    """The JSON value in the file ``path``, read only if it holds at most :data:`MAX_JSON_BYTES` (and nests at
    most :data:`MAX_JSON_DEPTH` deep, :func:`parse_json`); OSError if it cannot be read, ValueError saying
    what is wrong otherwise."""
    with open(path, "rb") as f:
        data = f.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES} bytes: not a file this project wrote (its JSON files hold "
                         "a few KiB); nothing was read past that")
    return parse_json(data)


def _cannot_write(path: Path, why: str) -> WriteError:
    return WriteError(f"cannot write {path}: {why}")  # one argument: it pickles (benchmark workers send it back)


def write_error(path: Path, error: OSError, size: int | None = None) -> WriteError:
    """``error`` (raised writing ``path``) as a :class:`WriteError` whose message names the path and ``size``."""
    needed = "" if size is None else f" ({size:,} bytes needed)"
    return _cannot_write(path, f"{error.strerror or error}{needed}")


def refuse_link(path: Path) -> None:
    """WriteError if ``path`` is a symbolic link: a link is never written through, followed or replaced."""
    if os.path.islink(path):
        raise _cannot_write(path, "it is a symbolic link, and memory-envs never writes through, follows "
                                  "or replaces one; remove it yourself or write elsewhere")


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the file descriptor ``fd`` (``os.write`` may write only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write(path: Path, data: bytes | Iterable[bytes], size: int | None = None) -> None:
    """Write ``data`` (bytes, or chunks of bytes: a file copied without holding it whole, whose ``size`` the
    caller names) to a temp file in path's directory, flush it to disk, then os.replace it in: readers
    see the old file or the new one, never half of one.

    A symbolic link or a folder at ``path`` is refused, and the temp file is opened with ``O_EXCL |
    O_NOFOLLOW``, so nothing is written through a link. The temp file is created as a plain ``open``
    creates a file (mode 0666 less the user's umask): colleagues sharing the folder can read the results.
    Any OSError (a full disk, no permission) becomes a :class:`WriteError` naming ``path`` and the bytes."""
    path = Path(path)
    if isinstance(data, (bytes, bytearray)):
        data, size = [data], len(data)
    refuse_link(path)
    if path.is_dir():
        raise _cannot_write(path, "it is a folder")
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    except OSError as error:
        raise write_error(path, error, size) from None
    try:
        try:
            for chunk in data:
                write_all(fd, chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise write_error(path, error, size) from None
        raise


def make_folder(path: Path) -> None:
    """``mkdir -p path``, with any OSError (a full disk) as a :class:`WriteError` naming it."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(Path(path), error) from None


def save(model: MultiHeadModel | Core, path: str | os.PathLike) -> None:
    """Write `model` (a MultiHeadModel or a bare core) to the directory `path`."""
    if not isinstance(model, MultiHeadModel):
        try:
            check_core(model)
        except TypeError:
            raise TypeError(f"model must be a MultiHeadModel or a core, got {type(model).__name__}") from None
    directory = Path(path)
    make_folder(directory)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    config = {"format_version": FORMAT_VERSION, "dtype": dtype,
              "type": type(model).__name__ if isinstance(model, MultiHeadModel) else "core",
              "config": model.to_config() if isinstance(model, MultiHeadModel) else core_config(model)}
    text = json.dumps(config, indent=2, sort_keys=True)
    atomic_write(directory / WEIGHTS, save_tensors(state))
    atomic_write(directory / CONFIG, text.encode())


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
        meta = read_json_file(path)
    except (OSError, ValueError) as error:
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
