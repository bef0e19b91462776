"""Run by tests/test_sharded_eval.py, alone or under torchrun: a tiny untrained model of each task
evaluated on the validation split of SHARDS the way training evaluates it (`evaluate_split`),
which under torchrun shares the records out. Rank 0 writes every setting's metrics and each
process's count of examples evaluated to OUT/metrics-{processes}.json; one process adds the
retrieval metrics of the whole score matrix computed in one piece (`whole_matrix`).

    python tests/eval_worker.py SHARDS OUT"""

import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

from vlbert.engine import distributed
from vlbert.eval.gallery import gallery_scores, gather_gallery
from vlbert.eval.metrics import recall_at_k
from vlbert.eval.split import eval_batches, evaluate_split
from vlbert.run.training import _build_parts_once
from vlbert.runconfig import load_run_config

TINY = ["model.name=tiny", "model.overrides.v_feature_size=363", "model.overrides.v_target_size=12",
        "data.max_length=96", "data.eval_batch_size=5", "data.vocab_size=200", "data.num_answers=20"]
VARIED = ["model.overrides.initializer_range=0.5"]  # an untrained VQA model whose answers vary
SETTINGS = {  # name -> (task, overrides)
    "vqa": ("vqa", VARIED),
    "vqa-limit": ("vqa", [*VARIED, "eval.limit=23"]),
    "retrieval-two-stage": ("retrieval", ["eval.k=3"]),
    "retrieval-all-pairs": ("retrieval", ["eval.retrieval_mode=all-pairs", "eval.limit=7"]),
    "retrieval-itc": ("retrieval", ["eval.retrieval_mode=itc"]),  # the ITC similarity alone
    "retrieval-first": ("retrieval", ["eval.k=2", "eval.caption_mode=first"]),
    "retrieval-one-image": ("retrieval", ["eval.limit=1"]),  # the second process keeps no caption
    "captioning": ("captioning", ["eval.max_caption_length=8", "eval.caption_mode=first", "eval.num_beams=2"]),
}


def evaluate(shards: Path, out: Path, task: str, overrides: list[str]) -> tuple[dict, list[int]]:
    dist = distributed.info()
    cfg = load_run_config(None, [*TINY, f"data.root={shards}", f"out_dir={out}", *overrides], task=task)
    torch.manual_seed(0)
    parts = _build_parts_once(cfg, out / task, dist)
    weights = distributed.broadcast_object(parts.model.state_dict())  # rank 0's initialisation everywhere
    parts.model.load_state_dict(weights)
    result = evaluate_split(replace(cfg, out_dir=str(out)), parts, "val")
    metrics = dict(result.metrics)
    if task == "retrieval" and not dist.enabled:  # the whole score matrix in one piece, as before sharding
        gallery = gather_gallery(eval_batches(cfg, parts, "val"), cfg.eval.limit)
        scores = gallery_scores(parts.model.eval(), gallery, cfg.eval.retrieval_mode, cfg.eval.k)
        metrics["whole_matrix"] = recall_at_k(scores, gallery.owner).as_dict()
    return metrics, distributed.all_gather_objects(result.data.examples)


def main(shards: Path, out: Path) -> None:
    dist = distributed.init_distributed(torch.device("cpu"))
    results = {}
    for name, (task, overrides) in SETTINGS.items():
        metrics, examples = evaluate(shards, out / f"work-{dist.world_size}", task, overrides)
        results[name] = {"metrics": metrics, "examples": examples}
    if dist.is_main:
        (out / f"metrics-{dist.world_size}.json").write_text(json.dumps(results, indent=1))
    distributed.cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
