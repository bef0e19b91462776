#!/usr/bin/env python
"""`make bench`: training step against LXMERT, FLOP utilisation, inference, retrieval scaling and
the data pipeline, in one process. Writes JSON to $BENCH_JSON (default bench.json), prints a table.

    python tools/bench.py [--quick] [--retrieval-model runs/quickstart/retrieval/model]
                          [--out bench.json]

The retrieval part uses the model `make quickstart` trains when it exists; otherwise an untrained
small model (its timings hold, its Recall@1 means nothing; the JSON says which).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from vlbert.bench.data_pipeline import measure_pipeline
from vlbert.bench.inference import measure_inference
from vlbert.bench.memory import account_inference_memory
from vlbert.bench.retrieval import RetrievalResult, load_gallery, measure_scaling
from vlbert.bench.timing import interleaved, matmul_peak_flops
from vlbert.bench.train_step import (
    count_flops,
    lxmert_step,
    make_inputs,
    parameters,
    vlbert_step,
)


def train_section(preset: str, device: torch.device, batch: int, repeats: int, autocast: torch.dtype | None) -> dict[str, Any]:
    inputs = make_inputs(preset, batch, 36, 36, device)
    ours_model, ours = vlbert_step(preset, device, inputs, autocast)
    _, every_token = vlbert_step(preset, device, inputs, autocast, mlm_scoring="all")
    lx_model, lxmert = lxmert_step(preset, device, inputs, autocast)
    seconds = interleaved({"vlbert": ours, "vlbert_mlm_all": every_token, "lxmert": lxmert}, repeats, 1, device)
    flops, lx_flops = count_flops(ours), count_flops(lxmert)  # both counted by torch's FlopCounterMode
    peak = matmul_peak_flops(device, dtype=autocast or torch.float32)
    return {
        "preset": preset, "batch": batch, "tokens": 36, "regions": 36,
        "vlbert_samples_per_s": batch / seconds["vlbert"], "lxmert_samples_per_s": batch / seconds["lxmert"],
        "train_ratio_vs_lxmert": seconds["lxmert"] / seconds["vlbert"],
        # the same step with the MLM vocabulary scored at every token (the original's way)
        "mlm_masked_speedup": seconds["vlbert_mlm_all"] / seconds["vlbert"],
        "vlbert_params": parameters(ours_model), "lxmert_params": parameters(lx_model),
        "step_flops": flops, "achieved_flops_per_s": flops / seconds["vlbert"], "matmul_peak_flops_per_s": peak,
        "mfu": flops / seconds["vlbert"] / peak,
        # the fair comparison of two models of different sizes: FLOPs done per second by each
        "lxmert_step_flops": lx_flops, "lxmert_achieved_flops_per_s": lx_flops / seconds["lxmert"],
        "flops_ratio_vs_lxmert": (flops / seconds["vlbert"]) / (lx_flops / seconds["lxmert"]),
    }  # fmt: skip


def retrieval_section(model_dir: Path, sizes: list[int], k: int, max_all_pairs: int, full_up_to: int) -> dict[str, Any]:
    from vlbert.data.sources.sort_of_clevr.shards import make_sort_of_clevr_shards
    from vlbert.eval.saved import RunParts, load_parts

    trained = (model_dir / "config.json").is_file()
    with tempfile.TemporaryDirectory() as tmp:
        if trained:
            parts = load_parts(str(model_dir), "retrieval")
        else:
            import vlbert
            from vlbert.data.pipeline.tokenize import build_wordpiece_tokenizer
            from vlbert.data.sources.sort_of_clevr.shards import make_sample

            texts = [c for i in range(50) for c in make_sample(i).record.captions]
            tokenizer = build_wordpiece_tokenizer(texts, 200, Path(tmp) / "tok")
            model = vlbert.create_model("tiny", task="retrieval", v_feature_size=363, v_target_size=12,
                                        vocab_size=len(tokenizer), max_position_embeddings=128)
            parts = RunParts(model, tokenizer, None)
        root = Path(tmp) / "gallery"  # the held-out split, grown to the largest size
        make_sort_of_clevr_shards(root, {"test": max(sizes)}, seed=0, regions=True)
        gallery = load_gallery(parts, root, "test", max(sizes))
        encode_s, scaling = measure_scaling(parts, gallery, sizes, k, max_all_pairs, full_up_to)
    result = RetrievalResult(k, str(model_dir) if trained else "untrained tiny", trained, encode_s, scaling)
    main = next((s for s in scaling if s.images == 1000), scaling[-1])
    exact = [s for s in scaling if s.all_pairs_r1 is not None]
    out = asdict(result)
    out["retrieval_speedup"] = main.all_pairs_s / main.two_stage_s
    out["at_images"] = main.images
    out["retrieval_r1_delta"] = exact[-1].two_stage_r1 - exact[-1].all_pairs_r1 if exact else None
    out["r1_delta_at_images"] = exact[-1].images if exact else None
    out["retrieval_r1_delta_first"] = exact[-1].two_stage_r1_first - exact[-1].all_pairs_r1_first if exact else None
    return out


def machine() -> dict[str, Any]:
    return {"date": datetime.date.today().isoformat(), "platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    cpu = torch.device("cpu")
    preset, batch, repeats = ("tiny", 4, 2) if args.quick else ("vilbert-base", 8, args.repeats)
    report: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    sizes = [20, 40] if args.quick else [int(n) for n in args.retrieval_sizes.split(",")]
    retrieval = lambda: retrieval_section(Path(args.retrieval_model), sizes, args.k,  # noqa: E731
                                          400 if args.quick else args.max_all_pairs, 20 if args.quick else args.full_up_to)
    if args.only_retrieval:
        report["retrieval"] = retrieval()
        return report
    print("training step ...", flush=True)
    report["train"] = train_section(preset, cpu, batch, repeats, None)
    if args.only_train:
        return report
    print("inference ...", flush=True)
    infer_batch = 32 if not args.quick else 4
    report["inference"] = asdict(measure_inference(preset, cpu, infer_batch, repeats, None))
    # peak memory of inference alone, each task in a fresh process (this one has trained two models)
    report["memory"] = [asdict(account_inference_memory(preset, task, infer_batch)) for task in ("retrieval", "vqa")]
    print("retrieval ...", flush=True)
    report["retrieval"] = retrieval()
    print("data pipeline ...", flush=True)
    pipe = measure_pipeline(40 if args.quick else 500, 5 if args.quick else 40, 64, args.workers)
    report["data"] = {**asdict(pipe), "headroom": pipe.headroom}
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        report["cuda"] = {"train": train_section(preset, gpu, batch, repeats, torch.bfloat16),
                          "inference": asdict(measure_inference(preset, gpu, 32, repeats, torch.bfloat16))}
    else:
        report["cuda"] = "skipped: no GPU"
    t, r = report["train"], report["retrieval"]
    report["summary"] = {"train_ratio_vs_lxmert": t["train_ratio_vs_lxmert"],
                         "flops_ratio_vs_lxmert": t["flops_ratio_vs_lxmert"], "mfu": t["mfu"],
                         "retrieval_speedup": r["retrieval_speedup"], "retrieval_r1_delta": r["retrieval_r1_delta"],
                         "data_headroom": report["data"]["headroom"]}  # fmt: skip
    return report


def train_table(report: dict[str, Any]) -> str:
    t = report["train"]
    return (f"train step samples/s, vlbert / vlbert scoring every token / LXMERT: {t['vlbert_samples_per_s']:.2f} / "
            f"{t['vlbert_samples_per_s'] / t['mlm_masked_speedup']:.2f} / {t['lxmert_samples_per_s']:.2f}\n"
            f"MLM at masked tokens only: step speed-up {t['mlm_masked_speedup']:.2f}; "
            f"train_ratio_vs_lxmert {t['train_ratio_vs_lxmert']:.2f} (samples/s); "
            f"achieved GFLOP/s vlbert / LXMERT: {t['achieved_flops_per_s'] / 1e9:.1f} / "
            f"{t['lxmert_achieved_flops_per_s'] / 1e9:.1f} (flops_ratio_vs_lxmert {t['flops_ratio_vs_lxmert']:.2f}); "
            f"mfu {t['mfu']:.2f}")


def retrieval_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        (f"retrieval_speedup at {r['at_images']} images (target >= 50)", f"{r['retrieval_speedup']:.1f}"),
        (f"retrieval_r1_delta at {r['r1_delta_at_images']} images (target |d| <= 0.01)",
         "n/a" if r["retrieval_r1_delta"] is None else f"{r['retrieval_r1_delta']:+.3f} "
         f"({r['retrieval_r1_delta_first']:+.3f} on descriptions)"),
    ]
    for s in r["scaling"]:
        mark = " (extrapolated)" if s["all_pairs_extrapolated"] else ""
        r1 = f"two-stage R@1 {s['two_stage_r1']:.3f} ({s['two_stage_r1_first']:.3f} on descriptions)"
        if s["all_pairs_r1"] is not None:
            r1 += f", all-pairs {s['all_pairs_r1']:.3f} ({s['all_pairs_r1_first']:.3f})"
        rows.append((f"  {s['images']} images x {s['texts']} captions: all-pairs / two-stage s",
                     f"{s['all_pairs_s']:.1f}{mark} / {s['two_stage_s']:.2f}; {r1}; "
                     f"index {s['itc_index_mb']:.1f} MB ITC + {s['rerank_cache_mb']:.1f} MB re-rank cache"))
    return rows


def aligned(rows: list[tuple[str, str]]) -> str:
    width = max(len(a) for a, _ in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def table(report: dict[str, Any]) -> str:
    t, i, r, d = report["train"], report["inference"], report["retrieval"], report["data"]
    rows = [
        ("train step samples/s, vlbert / LXMERT", f"{t['vlbert_samples_per_s']:.2f} / {t['lxmert_samples_per_s']:.2f}"),
        ("train_ratio_vs_lxmert (samples/s; the models differ in size)", f"{t['train_ratio_vs_lxmert']:.2f}"),
        ("achieved GFLOP/s vlbert / LXMERT (flops_ratio_vs_lxmert)",
         f"{t['achieved_flops_per_s'] / 1e9:.1f} / {t['lxmert_achieved_flops_per_s'] / 1e9:.1f} "
         f"({t['flops_ratio_vs_lxmert']:.2f})"),
        ("MLM at masked tokens only: step speed-up", f"{t['mlm_masked_speedup']:.2f}"),
        ("params vlbert / LXMERT", f"{t['vlbert_params']:,} / {t['lxmert_params']:,}"),
        ("mfu (target >= 0.65)", f"{t['mfu']:.2f} of {t['matmul_peak_flops_per_s'] / 1e9:.0f} GFLOP/s"),
        ("inference ITM pairs/s, VQA questions/s", f"{i['itm_pairs_per_s']:.1f}, {i['vqa_questions_per_s']:.1f}"),
        *((f"inference memory MB, {m['task']} in a fresh process: peak (runtime, weights, forward)",
           f"{m['peak_mb']:.0f} ({m['runtime_mb']:.0f}, {m['weights_mb']:.0f} for {m['parameter_mb']:.0f} of parameters, "
           f"{m['activations_mb']:.0f})") for m in report["memory"]),
        *retrieval_rows(r),
    ]
    rows.append(("data batches/s vs tiny model steps/s", f"{d['loader_batches_per_s']:.1f} vs {d['model_batches_per_s']:.1f} (headroom {d['headroom']:.1f}x)"))
    return aligned(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the suite runs, measures nothing")
    parser.add_argument("--out", default=os.environ.get("BENCH_JSON", "bench.json"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--retrieval-model", default="runs/quickstart/retrieval/model")
    parser.add_argument("--full-up-to", type=int, default=250, help="all-pairs in full (with Recall@1) up to this many images")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--max-all-pairs", type=int, default=50_000, help="above this, all-pairs time is extrapolated")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only-train", action="store_true", help="the training-step section alone")
    parser.add_argument("--only-retrieval", action="store_true", help="the retrieval section alone")
    parser.add_argument("--retrieval-sizes", default="250,500,1000,2000,5000", help="gallery sizes in images")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = run(args)
    Path(args.out).write_text(json.dumps(report, indent=1))
    if args.only_train:
        print(train_table(report))
    elif args.only_retrieval:
        print(aligned(retrieval_rows(report["retrieval"])))
    else:
        print(table(report))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
