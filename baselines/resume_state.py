"""Resume states without pickle: tensors in ``NAME.safetensors``, everything else in ``NAME.json``.

A state is a tree of dicts, lists, tuples, numbers, strings, None, torch tensors and numpy arrays
(an optimizer's ``state_dict()``, numpy / torch / Python RNG states). :func:`write_state` puts every
tensor in the safetensors file and the rest, with a reference per tensor, in the JSON file;
:func:`read_state` rebuilds the tree. Reading runs no code from the files (no ``pickle``,
no ``torch.load``), and a damaged file raises a RunFolderError naming it and what is wrong.

JSON encodings besides plain values: ``{"$tensor": key}``, ``{"$tuple": [...]}``,
``{"$int_keys": [[key, value], ...]}`` (a dict keyed by ints) and ``{"$ndarray": [...], "dtype": ...}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors

from agents.checkpoint import atomic_write
from baselines.run_folder import RunFolderError, atomic_write_text, read_json

TENSOR, TUPLE, INT_KEYS, NDARRAY = "$tensor", "$tuple", "$int_keys", "$ndarray"


def _encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous().clone()
        return {TENSOR: key}
    if isinstance(value, np.ndarray):
        return {NDARRAY: value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {TUPLE: [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: _encode(v, tensors) for k, v in value.items()}
        if all(isinstance(k, int) and not isinstance(k, bool) for k in value):
            return {INT_KEYS: [[k, _encode(v, tensors)] for k, v in value.items()]}
        raise TypeError(f"a state dict must have str or int keys, got {list(value)!r}")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a resume state")


def _decode(value: Any, tensors: dict[str, torch.Tensor], where: Path) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors, where) for v in value]
    if not isinstance(value, dict):
        return value
    if TENSOR in value:
        key = value[TENSOR]
        if not isinstance(key, str) or key not in tensors:
            raise RunFolderError(f"{where}: refers to tensor {key!r}, which "
                                 f"{where.with_suffix('.safetensors')} does not hold")
        return tensors[key]
    if TUPLE in value:
        return tuple(_decode(v, tensors, where) for v in value[TUPLE])
    if INT_KEYS in value:
        items = value[INT_KEYS]
        if not (isinstance(items, list) and all(isinstance(i, list) and len(i) == 2 and isinstance(i[0], int)
                                                for i in items)):
            raise RunFolderError(f"{where}: a {INT_KEYS} entry must be a list of [int, value] pairs")
        return {k: _decode(v, tensors, where) for k, v in items}
    if NDARRAY in value:
        try:
            return np.asarray(value[NDARRAY], dtype=np.dtype(value["dtype"]))
        except (KeyError, TypeError, ValueError) as error:
            raise RunFolderError(f"{where}: a damaged {NDARRAY} entry ({error})") from None
    return {k: _decode(v, tensors, where) for k, v in value.items()}


def write_state(folder: Path, name: str, state: dict[str, Any]) -> None:
    """Write ``state`` as ``folder/NAME.safetensors`` (its tensors) and ``folder/NAME.json`` (the rest)."""
    tensors: dict[str, torch.Tensor] = {}
    data = _encode(state, tensors)
    atomic_write(folder / f"{name}.safetensors", save_tensors(tensors))
    atomic_write_text(folder / f"{name}.json", json.dumps(data))


def read_state(folder: Path, name: str) -> dict[str, Any]:
    """The state :func:`write_state` wrote; RunFolderError naming the file if one is missing or damaged."""
    json_path, tensor_path = folder / f"{name}.json", folder / f"{name}.safetensors"
    data = read_json(json_path)
    if not tensor_path.is_file():
        raise RunFolderError(f"{tensor_path} is missing")
    try:
        tensors = load_file(str(tensor_path))
    except Exception as error:  # safetensors raises its own SafetensorError (and OSError)
        raise RunFolderError(f"{tensor_path} is not a readable safetensors file ({error})") from None
    return _decode(data, tensors, json_path)


__all__ = ["read_state", "write_state"]
