"""`tools/profile_step.py` and `tools/bench_small_step.py`: the profile table of a pre-training step, and the small model's step time by optimizer (docs/benchmarks.md)."""

import os
import subprocess
import sys

from tests.helpers import ROOT


def test_profile_table_lists_the_top_operators_and_their_shares():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "tools/profile_step.py", "--preset", "tiny", "--batch", "2", "--tokens", "8",
                           "--regions", "4", "--warmup", "1", "--steps", "2", "--top", "4"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("|")]
    assert len(lines) == 2 + 4 + 1  # header, rule, the top 4, the total
    rows = lines[2:6]
    shares = [float(row.rstrip(" |").split("|")[-1].strip().rstrip("%")) for row in rows]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 100.0
    assert any("aten::" in row for row in rows)  # matmuls and friends are among the top ops
    ms = [float(row.split("|")[3]) for row in rows]
    total = float(lines[-1].split("|")[3])
    assert sum(ms) <= total + 0.2 and all(m > 0 for m in ms)


def test_small_step_bench_times_both_optimizers():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "tools/bench_small_step.py", "--rounds", "1", "--steps", "1", "--batch", "4"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split(":")[0].strip(): line for line in done.stdout.splitlines() if "ms/step" in line}
    assert set(rows) == {"fused", "loop"}
    for line in rows.values():
        ms, per_s = float(line.split()[1]), float(line.split()[3])
        assert ms > 0 and abs(per_s - 1e3 / ms) < 0.02 * per_s
    assert "fused speed-up:" in done.stdout
