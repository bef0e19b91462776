"""Does a saved model read the boxes? Its ITM head scores each held-out image's full scene
description against the description of the scene mirrored left <-> right and, apart, top <->
bottom (`vlbert.eval.mirror`).

    python tools/mirror_check.py runs/quickstart/pretrain/model --data runs/quickstart/data --split test
"""

from __future__ import annotations

import argparse

from vlbert.eval.mirror import mirror_checks
from vlbert.eval.saved import load_parts
from vlbert.eval.split import eval_batches
from vlbert.runconfig import load_run_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="saved model directories with an ITM head (pre-training, retrieval)")
    parser.add_argument("--data", required=True, help="Sort-of-CLEVR shards (vlbert make-shards sort-of-clevr)")
    parser.add_argument("--split", default="test", help="split to check (default test)")
    parser.add_argument("--limit", type=int, default=1000, help="images checked at most (default 1000)")
    parser.add_argument("--max-length", type=int, default=96, help="tokens per description (default 96)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_run_config(None, ["task=retrieval", f"data.root={args.data}", "eval.caption_mode=first",
                                 f"data.max_length={args.max_length}", "data.eval_batch_size=128"])
    for path in args.models:
        parts = load_parts(path, "retrieval")
        parts.model.eval()
        checks = mirror_checks(parts.model, eval_batches(cfg, parts, args.split), parts.tokenizer,
                               args.max_length, args.limit)
        for axis, name in (("horizontal", "left <-> right"), ("vertical", "top <-> bottom")):
            check = checks[axis]
            print(f"{path}: true description preferred to the one mirrored {name} for {check.preferred:.3f} of "
                  f"{check.images} images (mean ITM log-odds margin {check.margin:+.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
