"""Time ``vlbert make-shards sort-of-clevr --num-images N`` on one CPU core and print images/s.

Usage: python tools/bench_make_shards.py [--num-images 2000] [--repeats 3]

The process is pinned to one core first. The time covers everything the command does (scene
sampling, drawing, PNG encoding, captions/questions, JSON, tar writing, manifest), not the
interpreter start or ``import vlbert``, which are timed and printed apart.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time


def pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pinning = pin_to_one_core()
    began = time.perf_counter()
    from vlbert.cli import main as vlbert_main

    import_seconds = time.perf_counter() - began
    rates = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            argv = ["make-shards", "sort-of-clevr", "--out", out, "--num-images", str(args.num_images)]
            began = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                assert vlbert_main(argv) == 0
            rates.append(args.num_images / (time.perf_counter() - began))
    print(f"vlbert make-shards sort-of-clevr --num-images {args.num_images} ({pinning}, {args.repeats} runs)")
    print(f"images/s: median {statistics.median(rates):.0f}, best {max(rates):.0f}, worst {min(rates):.0f}")
    print(f"(import vlbert.cli took {import_seconds:.1f} s, not counted)")


if __name__ == "__main__":
    main()
