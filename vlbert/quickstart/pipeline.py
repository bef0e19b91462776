"""`run_quickstart`: the whole product on built-in data, in minutes on a CPU.

Stages: generate Sort-of-CLEVR (task images with questions and captions, and a caption-only
pre-training corpus of other images, all with oracle regions) -> pre-train on the corpus (MLM,
masked region modelling, ITM, ITC), and check that its ITM head reads the boxes (true against
mirrored descriptions) -> fine-tune VQA from the pre-trained model (`QuickstartPlan.vqa_from`), score
its answer maps against the objects the questions name (the grounding score), and a
question-only baseline -> fine-tune retrieval (ITC and ITM; ranked by ITC top k re-ranked by ITM,
and by ITC alone) -> fine-tune captioning -> optionally (`--ablation`) the transfer table: VQA
from the pre-trained model and from scratch at several fractions of the labels, and retrieval from
scratch. Every stage is an ordinary `run_training` run in its own directory under `out_dir`.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from vlbert._extras import require
from vlbert.data.shards.writer import MANIFEST
from vlbert.data.sources.sort_of_clevr.shards import PRETRAIN_SPLIT, make_sort_of_clevr_shards
from vlbert.eval.mirror import mirror_checks
from vlbert.eval.split import eval_batches, evaluate_parts
from vlbert.quickstart.examples import retrieval_examples, vqa_examples
from vlbert.quickstart.figures import write_figures
from vlbert.quickstart.plan import LEARNING_RECIPE, QuickstartPlan, transfer_stage
from vlbert.quickstart.progress import StageClock
from vlbert.quickstart.report import format_table, write_report
from vlbert.quickstart.results import QuickstartResults, StageResult
from vlbert.run.grounding import grounding_scores
from vlbert.run.map_methods import DEFAULT_MAP_METHOD
from vlbert.run.predict import Predictor
from vlbert.run.training import RunResult, run_training
from vlbert.runconfig import RunConfig, load_run_config


class Quickstart:
    def __init__(self, out_dir: str | Path, plan: QuickstartPlan, ablation: bool, progress: bool) -> None:
        self.out, self.plan, self.ablation, self.progress = Path(out_dir), plan, ablation, progress
        self.data = self.out / "data"
        self.clock = StageClock(plan.estimated_seconds(ablation), enabled=progress)
        self.stages: list[StageResult] = []

    def config(self, task: str, name: str, steps: int, *extra: str, evals: int | None = None) -> RunConfig:
        """The stage's run config; `evals` validation points (default: the plan's per stage)."""
        p = self.plan
        evals = evals or p.evals_per_stage
        overrides = [
            f"task={task}", f"out_dir={self.out / name}", "model.name=tiny", f"data.root={self.data}",
            f"data.vocab_size={p.vocab_size}", f"data.batch_size={p.batch_size}", "data.eval_batch_size=128",
            "data.num_answers=12", "data.max_length=24", f"train.max_steps={steps}", f"train.seed={p.seed}",
            f"train.optim.lr={p.lr}", f"train.optim.warmup_steps={min(p.warmup_steps, steps)}",
            f"train.optim.schedule={p.schedule}",
            f"train.progress={str(self.progress).lower()}", "train.log_every=10",
            f"train.eval_every={max(1, -(-steps // evals))}",  # validation curves for the figure
        ]
        overrides += [f"model.overrides.{k}={v}" for k, v in p.model.items()]
        return load_run_config(None, [*overrides, *extra])

    def stage(self, name: str, cfg: RunConfig, test: bool = True) -> tuple[RunResult, dict[str, float]]:
        """Train one stage, then evaluate on the held-out test split (unless `test` is False: a
        stage whose model the next one starts from, measured through that one)."""
        self.clock.start(name, f"{cfg.task}, {cfg.train.max_steps} steps")
        began = time.perf_counter()
        result = run_training(cfg, resume=False)
        metrics = evaluate_parts(cfg, result.parts, "test") if test else {}
        seconds = time.perf_counter() - began
        self.stages.append(StageResult(name, seconds, result.steps, metrics, result.history))
        self.clock.done(name, seconds)
        return result, metrics

    def make_data(self) -> None:
        p = self.plan
        self.clock.start("data", f"{p.train_images} + {p.val_images} + {p.test_images} task images, "
                                 f"{p.pretrain_images} captioned images to pre-train on")
        began = time.perf_counter()
        splits = {"train": p.train_images, "val": p.val_images, "test": p.test_images, PRETRAIN_SPLIT: p.pretrain_images}
        if not self._data_matches(splits):
            workers = max(1, min(4, os.cpu_count() or 1))
            make_sort_of_clevr_shards(self.data, splits, seed=p.seed, workers=workers, regions=True, overwrite=True,
                                      caption_only=(PRETRAIN_SPLIT,))
        self.clock.done("data", time.perf_counter() - began)

    def _data_matches(self, splits: dict[str, int]) -> bool:
        import json

        manifest = self.data / MANIFEST
        if not manifest.is_file():
            return False
        saved = json.loads(manifest.read_text())
        meta = saved.get("meta", {})
        return saved.get("splits") == splits and meta.get("seed") == self.plan.seed and meta.get("regions") is True \
            and meta.get("caption_only") == [PRETRAIN_SPLIT]

    def run(self) -> QuickstartResults:
        began = time.perf_counter()
        p = self.plan
        self.make_data()
        extra = stage_overrides(p)
        pre_cfg = self.config("pretraining", "pretrain", p.pretrain_steps, *extra["pretrain"])
        pre, pre_metrics = self.stage("pretrain", pre_cfg)
        # does the pre-trained model read the boxes? left <-> right and top <-> bottom apart, in one pass
        checks = mirror_checks(pre.parts.model.eval(), eval_batches(self.retrieval_config(1), pre.parts, "test"),
                               pre.parts.tokenizer, p.pretrain_max_length)
        mirror = {**checks["horizontal"].as_dict("itm_mirror"), **checks["vertical"].as_dict("itm_mirror_vertical")}
        init, vocab = f"model.init={pre.model_dir}", f"data.tokenizer={pre.model_dir}"
        vqa_start = (init, *self.finetune_vqa()) if p.vqa_from == "pretrained" else (vocab,)
        vqa, vqa_metrics = self.vqa_phases("vqa", p.vqa_steps, p.vqa_first_steps, p.vqa_first_subtypes, *vqa_start)
        vqa_metrics = {**vqa_metrics, **self.grounding(vqa.model_dir)}
        _, qonly = self.stage("question-only", self.config("vqa", "question-only", p.question_only_steps, vocab,
                                                          "data.blank_images=true"))
        retrieval_cfg = self.retrieval_config(p.retrieval_steps, init)
        ret, ret_metrics = self.stage("retrieval", retrieval_cfg)
        itc_metrics = ret_metrics if p.retrieval_mode == "itc" else evaluate_parts(
            replace(retrieval_cfg, eval=replace(retrieval_cfg.eval, retrieval_mode="itc")), ret.parts, "test")
        caption_cfg = self.config("captioning", "caption", p.caption_steps, init, *extra["caption"],
                                  evals=2)  # decoding is slow
        _, cap_metrics = self.stage("caption", caption_cfg)
        transfer = self.run_transfer(init, vocab, ret_metrics) if self.ablation else None
        results = QuickstartResults(
            vqa=_vqa_summary(vqa_metrics, qonly),
            retrieval=_retrieval_summary(ret_metrics, itc_metrics),
            caption={k.removeprefix("caption_"): v for k, v in cap_metrics.items()
                     if k in ("bleu4", "cider") or k.startswith("caption_")},
            pretrain={**pre_metrics, **mirror},
            transfer=transfer, stages=self.stages,
            vqa_examples=vqa_examples(vqa.parts, replace(self.config("vqa", "vqa", 1)), self.data),
            retrieval_examples=retrieval_examples(ret.parts, retrieval_cfg, self.data),
            wall_seconds=time.perf_counter() - began, machine=machine_summary(), settings=_settings(p),
        )  # fmt: skip
        return results

    def grounding(self, model_dir: str | Path) -> dict[str, float]:
        """The grounding score of the VQA model's answer maps on the first test images: removal
        (what the demo draws; `grounding_*`) and co-attention (`grounding_attention_*`)."""
        scores = grounding_scores(Predictor(model_dir), self.plan.seed, self.plan.grounding_images,
                                  methods=(DEFAULT_MAP_METHOD, "attention"))
        return {**scores[DEFAULT_MAP_METHOD].as_dict("grounding"), **scores["attention"].as_dict("grounding_attention")}

    def retrieval_config(self, steps: int, *extra: str, name: str = "retrieval") -> RunConfig:
        return self.config("retrieval", name, steps, *extra, *stage_overrides(self.plan)["retrieval"])

    def finetune_vqa(self) -> tuple[str, ...]:
        """How VQA fine-tunes a pre-trained model (gradual unfreezing); a start from scratch trains
        every weight from the first step, since frozen random layers have nothing to keep."""
        return (f"train.finetune.unfreeze_every={self.plan.vqa_unfreeze_every}",)

    def vqa_phases(self, name: str, steps: int, first_steps: int, first_subtypes: tuple[str, ...], init: str,
                   *extra: str) -> tuple[RunResult, dict[str, float]]:
        """A VQA stage in two phases: `first_steps` on some question subtypes (stage `name`-first),
        then the rest of `steps` on every question, from there (stage `name`); one phase when
        `first_steps` is 0."""
        if first_steps:
            subtypes = "data.question_subtypes=[" + ",".join(first_subtypes) + "]"
            first, _ = self.stage(f"{name}-first", self.config("vqa", f"{name}-first", first_steps, init, subtypes, *extra),
                                  test=False)
            init = f"model.init={first.model_dir}"
        return self.stage(name, self.config("vqa", name, steps - first_steps, init, *extra))

    def run_transfer(self, init: str, vocab: str, retrieval: dict[str, float]) -> dict[str, Any]:
        """The transfer table: VQA test accuracy from the pre-trained model and from scratch (its
        vocabulary only), the same steps and settings (the pre-trained start unfrozen gradually, as
        the VQA stage), at each fraction of the labels; and
        text->image R@1 of the retrieval stage against the same stage from scratch."""
        p, vqa = self.plan, {}
        for fraction in p.transfer_fractions:
            row = {}
            for start, how in (("pretrained", (init, *self.finetune_vqa())), ("scratch", (vocab,))):
                name = transfer_stage(fraction, start)
                cfg = self.config("vqa", name, p.transfer_vqa_steps, *how, f"data.label_fraction={fraction}")
                row[start] = self.stage(name, cfg)[1]["vqa_acc"]
            vqa[str(fraction)] = row
        _, scratch = self.stage("retrieval-scratch", self.retrieval_config(p.retrieval_steps, vocab,
                                                                           name="retrieval-scratch"))
        return {"vqa": vqa, "retrieval": {"pretrained": retrieval["t2i_r1"], "scratch": scratch["t2i_r1"]},
                "vqa_steps": p.transfer_vqa_steps, "retrieval_steps": p.retrieval_steps}


def stage_overrides(plan: QuickstartPlan) -> dict[str, tuple[str, ...]]:
    """The settings each stage adds to `Quickstart.config`'s common ones (besides its initialisation)."""
    captions = f"data.train_captions={plan.train_captions}"
    return {
        "pretrain": (f"data.train_split={PRETRAIN_SPLIT}", f"data.max_length={plan.pretrain_max_length}",
                     f"data.train_captions={plan.pretrain_captions}",
                     f"data.batch_size={plan.pretrain_batch_size}",
                     f"objective.itm_negative_fraction={plan.pretrain_itm_negative_fraction}",
                     f"data.vocab_max_records={plan.vocab_records}", f"data.vocab_splits=[{PRETRAIN_SPLIT},train]",
                     f"objective.box_negatives={str(plan.pretrain_box_negatives).lower()}",
                     f"objective.box_negative_kind={plan.pretrain_box_negative_kind}",
                     f"objective.mlm_focus_words=[{','.join(plan.pretrain_focus_words)}]",
                     f"objective.mlm_focus_prob={plan.pretrain_focus_prob}"),
        "vqa": (),
        "retrieval": ("data.max_length=96", captions, "eval.caption_mode=first", f"eval.k={plan.retrieval_k}",
                      f"eval.retrieval_mode={plan.retrieval_mode}",
                      *(() if plan.retrieval_itm else ("objective.weights.itm=0",))),
        "caption": ("data.max_length=96", captions, "eval.caption_mode=first", f"eval.limit={plan.caption_eval_images}",
                    "eval.max_caption_length=90"),
    }


def _retrieval_summary(ranked: dict[str, float], itc: dict[str, float]) -> dict[str, float]:
    """The stage's figures as ranked (two-stage by default), and text->image R@1 by ITC alone."""
    keys = ("t2i_r1", "t2i_r5", "t2i_r10", "i2t_r1", "i2t_r5", "i2t_r10", "num_images")
    return {**{k: ranked[k] for k in keys}, "t2i_r1_itc": itc["t2i_r1"], "i2t_r1_itc": itc["i2t_r1"]}


def _vqa_summary(vqa: dict[str, float], qonly: dict[str, float]) -> dict[str, float]:
    return {
        "relational_acc": vqa.get("vqa_acc_relational", float("nan")),
        "nonrelational_acc": vqa.get("vqa_acc_nonrelational", float("nan")),
        "overall_acc": vqa["vqa_acc"],
        "question_only_acc": qonly["vqa_acc"],
        "question_only_relational_acc": qonly.get("vqa_acc_relational", float("nan")),
        "question_only_nonrelational_acc": qonly.get("vqa_acc_nonrelational", float("nan")),
        # per question subtype: which skills the model has (reading a shape, a position, counting)
        **{f"{key.removeprefix('vqa_acc_subtype_')}_acc": value
           for key, value in vqa.items() if key.startswith("vqa_acc_subtype_")},
        # whether the answer's map marks the object the question names (Quickstart.grounding)
        **{key: value for key, value in vqa.items() if key.startswith("grounding")},
    }


def _settings(plan: QuickstartPlan) -> dict[str, Any]:
    settings = asdict(plan)
    settings["regions"] = "oracle detector: ground-truth boxes, 11x11 RGB crops, 12-class distributions"
    # options that depart from the original ViLBERT (docs/model.md, "Learning from scratch")
    settings["departures_from_vilbert"] = {k: v for k, v in plan.model.items() if k in LEARNING_RECIPE}
    return settings


def machine_summary() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{torch.get_num_threads()} threads on {os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}"


def run_quickstart(out_dir: str | Path = "runs/quickstart", ablation: bool = False,
                   plan: QuickstartPlan | None = None, progress: bool = True) -> QuickstartResults:
    """Run every stage, print the table, and write report.json and the figures into `out_dir`."""
    require("pycocoevalcap", "the quickstart's captioning scores")  # before the stages, not after them
    results = Quickstart(out_dir, plan or QuickstartPlan(), ablation, progress).run()
    write_report(results, out_dir)
    write_figures(results, out_dir)
    print(format_table(results))
    return results
