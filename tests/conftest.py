"""Shared fixtures: the devices the suite runs on, and where SB3 and Ray write (not /tmp: the suite leaves nothing
there).

``device`` runs a test on the CPU always and on CUDA when torch sees a GPU; without one the CUDA
case is reported as skipped with the reason. Tests that mean the CPU say ``device="cpu"`` themselves.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest
import torch

NO_CUDA = "CUDA is not available on this machine (torch.cuda.is_available() is False)"
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
DEVICES = ["cpu", pytest.param("cuda", marks=requires_cuda)]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """torch.device("cpu"), then torch.device("cuda") where a GPU is available."""
    return torch.device(request.param)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for the whole suite: its tensors are small, and the second core is left to the
    subprocesses the CLI tests start. Set once here (test modules used to set it at import, 1 or 2, and the last
    one imported won)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def sb3_logs_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """SB3's default logger (a RecurrentPPO without tensorboard_log) writes into the session's temporary folder,
    not a new /tmp/SB3-* folder per model; subprocesses inherit it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3")))
        yield


@pytest.fixture(scope="session", autouse=True)
def ray_sessions_in_tmp() -> Iterator[None]:
    """Ray's session folders (``/tmp/ray/session_*`` by default) go to a folder of this test session, removed at its
    end; subprocesses inherit it. A short path under the temp root: Ray's socket paths must stay under 107 bytes."""
    folder = tempfile.mkdtemp(prefix="ray-")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TMPDIR", folder)
        yield
    shutil.rmtree(folder, ignore_errors=True)
