"""What the training commands show while they run: a bar over the budget that bounds the run."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class BudgetBar:
    """A progress bar over the budget that bounds a run: whichever of the step budget (``max_steps``) and
    the time budget (``max_seconds``, optional) is further spent, the one that ends the run at a steady
    pace, with the time it leaves and a text the command gives (the N reached). ``step`` and ``seconds``
    are where a resumed run starts."""

    FORMAT = "{desc} {percentage:3.0f}%|{bar}| "

    def __init__(self, max_steps: int, max_seconds: float | None, *, step: int = 0, seconds: float = 0.0,
                 unit: str = "steps", disable: bool = False) -> None:
        self.max_steps, self.max_seconds, self.unit = max_steps, max_seconds, unit
        self.start_step, self.start_seconds = step, seconds
        self.started = time.perf_counter()
        self.step, self.text, self._shown = step, "", 0.0
        self.bar = tqdm(total=100, disable=disable, dynamic_ncols=True, file=sys.stderr, bar_format=self.FORMAT)
        self.update(step)

    def update(self, step: int, text: str | None = None) -> None:
        """The run has taken ``step`` steps; ``text`` (if given) replaces the text shown. Redrawn at most
        twice a second unless the text changes."""
        self.step = step
        changed = text is not None and text != self.text
        if text is not None:
            self.text = text
        now = time.perf_counter()
        if not changed and now - self._shown < 0.5:
            return
        self._shown = now
        seconds = self.start_seconds + now - self.started
        step_share = min(step / self.max_steps, 1.0)
        time_share = 0.0 if self.max_seconds is None else min(seconds / self.max_seconds, 1.0)
        by_time = self.max_seconds is not None and time_share >= step_share
        if by_time:
            desc = f"time budget {seconds:.0f}/{self.max_seconds:.0f} s"
            left = self.max_seconds - seconds  # type: ignore[operator]
        else:
            desc = f"step budget {step}/{self.max_steps} {self.unit}"
            taken = step - self.start_step
            left = (self.max_steps - step) * (now - self.started) / taken if taken else None
        parts = [f"{step} {self.unit}", self.text] if by_time else [self.text]
        if left is not None:
            parts.append(f"~{_duration(max(left, 0.0))} left")
        tail = ", ".join(p for p in parts if p).replace("{", "{{").replace("}", "}}")
        self.bar.bar_format = self.FORMAT + tail
        self.bar.n = 100 * max(step_share, time_share)
        self.bar.set_description_str(desc, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        """Draw the final state and end the bar."""
        self._shown = 0.0
        self.update(self.step)
        self.bar.close()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["BudgetBar"]


class RunsBar:
    """A bar on stderr over a grid's runs (``reproduce``, ``benchmark``), opened at its first line or run: a
    refusal raised before any (a bad option, an output folder that cannot be created) prints alone, on one line."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._bar: tqdm | None = None

    def _open(self) -> tqdm:
        if self._bar is None:
            self._bar = tqdm(total=self.total, unit="run", dynamic_ncols=True, file=sys.stderr)
        return self._bar

    def write(self, line: str) -> None:
        """Print ``line`` above the bar."""
        self._open().write(line)

    def update(self, *_: object) -> None:
        """One more run finished (its arguments, the run's name and result, are not needed)."""
        self._open().update()

    def __enter__(self) -> "RunsBar":
        return self

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.close()
