"""Where a grid's units of work run: local processes (the default) or a Ray cluster.

A unit is a module-level function and its arguments that trains (or resumes) into its own run
folder and returns a JSON-able result. Because a unit called again continues its folder, a rerun
of the same grid after the driver was killed finishes only what is missing, and a retry after a
worker or node died resumes from the folder's last saved state.

Both backends take the same :class:`Unit` list and report through the same callbacks, so a grid
(``baselines.benchmark``, ``baselines.reproduce``) writes the same folders whichever runs it. One
unit that raises does not stop the others: it comes back as a :class:`UnitFailure` naming its folder.

Ray (the optional ``ray`` extra) runs each unit as a Ray core task with declared resources
(``cpus_per_unit``, ``gpus_per_unit``, fractional GPUs allowed, so several units share a GPU), and
retries a unit whose worker or node died up to ``max_retries`` times. Ray Tune is not used: its trial
folders, checkpoint syncing and restore would duplicate what the run folders already do. On a
cluster of several machines the run folders must be on storage every node reaches (a shared
filesystem); :func:`check_storage` probes that before any work starts.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import multiprocessing
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from baselines.orphans import die_with_parent

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class Unit:
    """One unit of work: ``fn(*args)`` trains into ``folders`` (a population's member folders, or one
    run's), resuming what they hold."""

    name: str
    folders: tuple[str, ...]
    fn: Callable[..., Any]
    args: tuple = ()


@dataclass(frozen=True)
class UnitFailure:
    """A unit that raised (or whose worker died past its retries), with its folders and the error as text."""

    name: str
    folders: tuple[str, ...]
    error: str

    def __str__(self) -> str:
        return f"{self.name} failed ({', '.join(self.folders)}): {self.error}"


class UnitsFailed(RuntimeError):
    """Some units of a grid failed (the others finished); ``failures`` lists them."""

    def __init__(self, failures: Sequence[UnitFailure]) -> None:
        self.failures = list(failures)
        super().__init__(f"{len(self.failures)} unit(s) failed: " + "; ".join(str(f) for f in self.failures)
                         + "; rerun the same command to retry them")  # one line: the error line of every refusal


@dataclass(frozen=True)
class BackendConfig:
    """How to run units.

    ``backend``: ``"local"`` (``workers`` processes on this machine) or ``"ray"`` (tasks on the Ray
    cluster at ``address``; None starts or joins a Ray on this machine). ``cpus_per_unit`` and
    ``gpus_per_unit`` are the resources Ray reserves per unit (``cpus_per_unit`` > 0: a unit reserving
    no CPU would let Ray start any number of them on a node at once); ``max_retries`` is how often Ray
    reruns a unit whose worker or node died (the unit resumes from its folder).
    """

    backend: str = "local"
    workers: int = 2
    address: str | None = None
    cpus_per_unit: float = 1.0
    gpus_per_unit: float = 0.0
    max_retries: int = 2

    def validate(self) -> "BackendConfig":
        """Raise ValueError naming the first option that is not allowed."""
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"workers must be a positive integer, got {self.workers!r}")
        for name, least in (("cpus_per_unit", "> 0"), ("gpus_per_unit", ">= 0")):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or value < 0 or (value == 0 and least == "> 0")):
                raise ValueError(f"{name} must be a number {least}, got {value!r}")
        if self.gpus_per_unit > 1 and self.gpus_per_unit != int(self.gpus_per_unit):
            raise ValueError(f"gpus_per_unit above 1 must be a whole number (Ray's rule), got {self.gpus_per_unit}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")
        if self.backend == "local" and self.address is not None:
            raise ValueError("address is for the ray backend; the local backend runs on this machine")
        if self.backend == "ray":
            require_ray()
            check_address(self.address)
        return self


ADDRESS_TIMEOUT_SECONDS = 5.0
"""How long :func:`check_address` waits for a Ray head node to accept a connection."""


def check_address(address: str | None) -> None:
    """Refuse a Ray ``address`` (``host:port`` or ``ray://host:port``) where nothing accepts a connection within
    :data:`ADDRESS_TIMEOUT_SECONDS`, in one ValueError, before any work starts (``ray.init`` would retry for a
    minute). None, ``auto`` and ``local`` (Ray finds or starts the cluster itself) are left to Ray."""
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address must be host:port, ray://host:port, auto or local, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=ADDRESS_TIMEOUT_SECONDS).close()
    except OSError as error:
        raise ValueError(f"address must be that of a running Ray head node: nothing accepts a connection at "
                         f"{address!r} ({error.strerror or error})") from None


def require_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError('the ray backend needs Ray: in the clone, pip install -e ".[ray]"', name="ray") from None
    return ray


@contextlib.contextmanager
def connected(config: BackendConfig) -> Iterator[None]:
    """With the ray backend, a connection to Ray for the block (started or joined at ``config.address``
    unless one is open already, and closed at the end if this opened it); the local backend needs none."""
    if config.backend != "ray":
        yield
        return
    ray = require_ray()
    if ray.is_initialized():
        yield
        return
    ray.init(address=config.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def _quiet(*_: Any) -> None:
    return None


def run_units(units: Sequence[Unit], config: BackendConfig,
              on_done: Callable[[Unit, Any], None] = _quiet,
              on_failure: Callable[[UnitFailure], None] = _quiet,
              storage: str | os.PathLike | None = None) -> tuple[list[Any], list[UnitFailure]]:
    """Run every unit; returns (results of the units that finished, in completion order, failures).

    ``on_done(unit, result)`` and ``on_failure(failure)`` are called as each unit ends. ``storage``:
    the folder the units write their run folders to, which :func:`check_storage` probes first.
    """
    config.validate()
    with connected(config):
        if storage is not None:
            check_storage(storage, config)
        if not units:
            return [], []
        run = _run_ray if config.backend == "ray" else _run_local
        return run(list(units), config, on_done, on_failure)


def _failure(unit: Unit, error: BaseException) -> UnitFailure:
    text = str(error).strip() or type(error).__name__
    return UnitFailure(unit.name, unit.folders, f"{type(error).__name__}: {text}")


def _run_local(units: list[Unit], config: BackendConfig, on_done, on_failure) -> tuple[list[Any], list[UnitFailure]]:
    """The units on ``config.workers`` spawned processes. A stop of the driver (Ctrl-C's KeyboardInterrupt, or
    any error in a callback) cancels the units not started and sends the running workers SIGTERM (a run stops
    at its next step, its state on disk complete) before it propagates: the pool's own exit would wait for every
    queued unit, so a card would go on training after Ctrl-C."""
    results, failures = [], []
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no shared torch thread pools
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=config.workers, mp_context=context,
                                                  initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(unit.fn, *unit.args): unit for unit in units}
        for future in concurrent.futures.as_completed(futures):
            unit = futures[future]
            error = future.exception()
            if error is None:
                results.append(future.result())
                on_done(unit, results[-1])
            else:
                failures.append(_failure(unit, error))
                on_failure(failures[-1])
    except BaseException:
        workers = list((pool._processes or {}).values())  # the executor has no public handle on them
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        raise
    pool.shutdown()
    return results, failures


def _run_ray(units: list[Unit], config: BackendConfig, on_done, on_failure) -> tuple[list[Any], list[UnitFailure]]:
    ray = require_ray()  # connected by run_units
    task = ray.remote(_call).options(num_cpus=config.cpus_per_unit, num_gpus=config.gpus_per_unit,
                                     max_retries=config.max_retries, retry_exceptions=False)
    pending = {task.remote(unit.fn, unit.args): unit for unit in units}
    results, failures = [], []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        unit = pending.pop(done[0])
        try:
            results.append(ray.get(done[0]))
        except ray.exceptions.RayError as error:
            cause = getattr(error, "cause", None)
            failures.append(_failure(unit, cause if isinstance(cause, BaseException) else error))
            on_failure(failures[-1])
        else:
            on_done(unit, results[-1])
    return results, failures


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    return fn(*args)


def check_storage(folder: str | os.PathLike, config: BackendConfig) -> None:
    """With the ray backend, check that a Ray worker sees ``folder`` (where the run folders go):
    write a marker here, read it in a task. ValueError if the worker does not see it."""
    if config.validate().backend != "ray":
        return
    ray = require_ray()
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f".storage-check-{uuid.uuid4().hex}"
    marker.write_text("memory-envs")
    try:
        with connected(config):
            seen = ray.get(ray.remote(_sees).options(num_cpus=0).remote(str(marker)))
    finally:
        marker.unlink()
    if not seen:
        raise ValueError(f"the Ray workers do not see {folder}: put the run folders on storage every node "
                         "reaches (a shared filesystem) with --storage")


def _sees(path: str) -> bool:
    return Path(path).is_file()
