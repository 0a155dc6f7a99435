"""Worker processes end with their parent: a command killed even by ``kill -9`` leaves no worker behind.

A worker calls :func:`die_with_parent` with its parent's pid first thing. On Linux the kernel then kills the
worker (SIGKILL) the moment its parent dies (``prctl(PR_SET_PDEATHSIG)``, set through ctypes); everywhere, and
as a second guard, a daemon thread ends the worker within :data:`PARENT_POLL_SECONDS` of being re-parented (its
parent gone). A parent that died before the call is caught at once by the same test. The OS then releases the
worker's run-folder locks, so a rerun can continue its folders.

Users: the local backend's worker processes (:mod:`baselines.backends`, its pool's initializer) and the
SubprocVecEnv workers of ``memory-envs rl --vec-env subproc`` (:mod:`baselines.rl.run`), both started with the
``spawn`` method so that every worker is the command's own child, with no fork server between them that could
outlive the command.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PARENT_POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1
"""``prctl``'s option number (linux/prctl.h): the signal this process gets when its parent dies."""


def kill_on_parent_death() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent: int) -> None:
    """End this process (a worker) when ``parent`` (the process that started it) ends; see the module doc."""
    kill_on_parent_death()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


__all__ = ["PARENT_POLL_SECONDS", "die_with_parent", "kill_on_parent_death"]
