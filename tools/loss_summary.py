"""What a training run's logged losses did: the mean of each loss over its first and last `--rows`
logged steps, and every validation point, from the run directory's `metrics.json`.

    python tools/loss_summary.py runs/quickstart/pretrain [runs/quickstart/retrieval ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean


def summarize(rows: list[dict[str, float]], edge: int = 5) -> dict[str, tuple[float, float]]:
    """loss key -> (mean of its first `edge` logged values, mean of its last `edge`)."""
    keys = sorted({k for row in rows for k in row if k == "loss" or k.startswith("loss_")})
    series = {k: [row[k] for row in rows if k in row] for k in keys}
    return {k: (mean(v[:edge]), mean(v[-edge:])) for k, v in series.items() if v}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (out_dir of vlbert pretrain / finetune)")
    parser.add_argument("--rows", type=int, default=5, help="logged steps averaged at each end")
    args = parser.parse_args(argv)
    for run in args.runs:
        rows = json.loads((Path(run) / "metrics.json").read_text())
        print(f"# {run}")
        for key, (first, last) in summarize([r for r in rows if not any(k.startswith("eval_") for k in r)],
                                            args.rows).items():
            print(f"{key}: {first:.3f} -> {last:.3f} (mean of the first / last {args.rows} logged steps)")
        for row in (r for r in rows if any(k.startswith("eval_") for k in r)):
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
