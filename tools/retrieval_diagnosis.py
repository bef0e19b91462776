"""Where a retrieval model's text->image ranking goes wrong on built-in Sort-of-CLEVR shards: recall
by ITC alone and with ITM re-ranking ITC's top k, and, for each caption whose top ITC image is
wrong, whether that image has the true image's shape for every colour and how many of the six
grid cells it shares with it (against random pairs of images). An embedding that encodes shapes
but no positions confuses images with the same shapes and no more alike cells than chance.

    python tools/retrieval_diagnosis.py runs/quickstart/retrieval/model runs/quickstart/data --split test --limit 1000
"""

from __future__ import annotations

import argparse
import random

import torch

from vlbert.data.pipeline.tokenize import load_tokenizer
from vlbert.data.sources.sort_of_clevr.captions import SceneSignature, parse_description
from vlbert.eval.gallery import gather_gallery
from vlbert.eval.metrics import recall_at_k
from vlbert.eval.retrieval import encode_images, encode_texts, two_stage_scores
from vlbert.eval.saved import RunParts
from vlbert.eval.split import eval_batches
from vlbert.factory import create_model
from vlbert.runconfig import load_run_config


def cells_shared(a: SceneSignature, b: SceneSignature) -> int:
    return sum(x[2] == y[2] for x, y in zip(a.objects, b.objects))


def same_shapes(a: SceneSignature, b: SceneSignature) -> bool:
    return [x[1] for x in a.objects] == [y[1] for y in b.objects]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a saved retrieval model directory (with its tokenizer)")
    parser.add_argument("data", help="Sort-of-CLEVR shards (vlbert make-shards sort-of-clevr --region-features)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=1000, help="images of the split")
    parser.add_argument("--k", type=int, nargs="*", default=[4, 16], help="ITM re-ranks ITC's top k (none: skip)")
    parser.add_argument("--max-length", type=int, default=96)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    cfg = load_run_config(None, [f"data.root={args.data}", f"data.max_length={args.max_length}",
                                 "eval.caption_mode=first"], task="retrieval")
    parts = RunParts(create_model(args.model, task="retrieval").eval(), load_tokenizer(args.model), None)
    gallery = gather_gallery(eval_batches(cfg, parts, args.split), args.limit)
    texts, images = encode_texts(parts.model, gallery.texts), encode_images(parts.model, gallery.images)
    sims = texts.embeds @ images.embeds.t()  # [T, I]
    rows = [("itc", sims)] + [(f"two-stage k={k}", two_stage_scores(parts.model, texts, images, k=k)) for k in args.k]
    for name, scores in rows:
        m = recall_at_k(scores, gallery.owner)
        print(f"{name}: {len(gallery.owner)} captions, {scores.shape[1]} images, "
              f"t2i R@1 {m.t2i_r1:.3f} R@5 {m.t2i_r5:.3f} R@10 {m.t2i_r10:.3f}")
    signature = [parse_description(refs[0]) for refs in gallery.references]
    top = sims.argmax(1).tolist()
    wrong = [(signature[int(o)], signature[j]) for o, j in zip(gallery.owner.tolist(), top) if j != o]
    wrong = [(a, b) for a, b in wrong if a is not None and b is not None]
    rng = random.Random(0)
    pairs = [(rng.choice(signature), rng.choice(signature)) for _ in range(2000)]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    print(f"ITC top-1 wrong: {len(wrong)}; with the true image's shape for every colour: "
          f"{sum(same_shapes(a, b) for a, b in wrong)}")
    if wrong:
        print(f"grid cells shared with the true image (of 6): {sum(cells_shared(a, b) for a, b in wrong) / len(wrong):.2f}"
              f" (random pairs: {sum(cells_shared(a, b) for a, b in pairs) / len(pairs):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
