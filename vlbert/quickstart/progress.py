"""The quickstart's stage display: which stage runs, how long it has taken, and the time left,
from planned stage times rescaled by how fast the finished stages actually ran."""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


class StageClock:
    def __init__(self, planned: dict[str, float], enabled: bool = True) -> None:
        self.planned, self.enabled = dict(planned), enabled
        self.began = time.perf_counter()
        self.finished: dict[str, float] = {}

    def time_left(self) -> float:
        """Planned time of the unfinished stages, scaled by actual / planned of the finished
        training stages (data generation runs at its own, unrelated speed)."""
        trained = [name for name in self.finished if name != "data"]
        done_plan = sum(self.planned[name] for name in trained)
        scale = sum(self.finished[name] for name in trained) / done_plan if done_plan else 1.0
        return scale * sum(t for name, t in self.planned.items() if name not in self.finished)

    def start(self, name: str, what: str) -> None:
        if not self.enabled:
            return
        index = list(self.planned).index(name) + 1 if name in self.planned else len(self.finished) + 1
        elapsed = time.perf_counter() - self.began
        print(f"\n[{index}/{len(self.planned)}] {name}: {what} | elapsed {_clock(elapsed)}, "
              f"about {_clock(self.time_left())} left", file=sys.stderr, flush=True)  # fmt: skip

    def done(self, name: str, seconds: float) -> None:
        self.finished[name] = seconds
        if self.enabled:
            print(f"[done] {name} in {_clock(seconds)}", file=sys.stderr, flush=True)
