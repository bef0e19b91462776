"""The quickstart's figures: loss curves, VQA examples, retrieval examples (PNG, matplotlib Agg).

Figures are built as `matplotlib.figure.Figure` objects, not through pyplot, so no global backend
or figure registry is touched and nothing needs a display.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from vlbert.quickstart.results import QuickstartResults, RetrievalExample, StageResult, VQAExample

RIGHT, WRONG, MUTED = "#1a7f37", "#cf222e", "#57606a"
DPI = 110
MAX_VQA, MAX_RETRIEVAL, MAX_EVAL_CURVES = 8, 4, 4


def upscaled(png: bytes, size: int = 300) -> np.ndarray:
    """The image as an RGB array, enlarged by a whole factor with nearest-neighbour (pixels stay square)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    factor = max(1, size // max(image.size))
    return np.asarray(image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST))


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path


# ---- loss curves -----------------------------------------------------------------------------

def _series(history: list[dict[str, float]], key: str) -> tuple[list[float], list[float]]:
    rows = [row for row in history if key in row and row[key] is not None and math.isfinite(row[key])]
    return [row["step"] for row in rows], [row[key] for row in rows]


def _eval_keys(history: list[dict[str, float]]) -> list[str]:
    """Eval metrics drawn on the right axis: those that stay within [0, 1] (accuracies, recalls, BLEU)."""
    keys: dict[str, bool] = {}
    for row in history:
        for key, value in row.items():
            if key.startswith("eval_") and "loss" not in key:
                keys[key] = keys.get(key, True) and value is not None and 0.0 <= value <= 1.0
    return [key for key, fits in keys.items() if fits][:MAX_EVAL_CURVES]


def _loss_panel(ax: Axes, stage: StageResult) -> None:
    ax.set_title(f"{stage.name} ({stage.steps} steps)", fontsize=10)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    steps, loss = _series(stage.history, "loss")
    if not steps:
        ax.text(0.5, 0.5, "no training log", ha="center", va="center", transform=ax.transAxes, color=MUTED)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ax.plot(steps, loss, color="black", lw=1.4, label="loss")
    parts = sorted({k for row in stage.history for k in row if k.startswith("loss_")})
    for key in parts:
        ax.plot(*_series(stage.history, key), lw=0.8, alpha=0.7, label=key.removeprefix("loss_"))
    eval_steps, eval_loss = _series(stage.history, "eval_loss")
    if eval_steps:
        ax.plot(eval_steps, eval_loss, "x", color="black", ms=6, label="eval loss")
    if min(loss) > 0 and max(loss) / min(loss) > 20:
        ax.set_yscale("log")
    ax.set_ylabel("training loss", fontsize=8)
    handles, labels = ax.get_legend_handles_labels()
    keys = _eval_keys(stage.history)
    if keys:
        twin = ax.twinx()
        for key in keys:
            twin.plot(*_series(stage.history, key), "o--", ms=4, lw=0.8, label=key.removeprefix("eval_"))
        twin.set_ylim(-0.02, 1.02)
        twin.set_ylabel("eval metric", fontsize=8)
        twin.tick_params(labelsize=7)
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    # below the panel, so that it never hides a curve
    ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=min(len(labels), 5),
              frameon=False)


def loss_curves_figure(stages: list[StageResult]) -> Figure:
    """One panel per stage: training loss (and its parts) against step, eval metrics on a right axis."""
    cols = min(3, max(1, len(stages)))
    rows = max(1, math.ceil(len(stages) / cols))
    fig = Figure(figsize=(5.2 * cols, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, stage in zip(axes, stages):
        _loss_panel(ax, stage)
    for ax in axes[len(stages):]:
        ax.set_visible(False)
    fig.suptitle("quickstart training curves", fontsize=12)
    return fig


# ---- VQA examples ----------------------------------------------------------------------------

def _vqa_panel(ax: Axes, example: VQAExample) -> None:
    color = RIGHT if example.correct else WRONG
    ax.imshow(upscaled(example.image_png), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color(color)
        spine.set_linewidth(3)
    question = textwrap.fill(example.question, 40)
    verdict = "right" if example.correct else "wrong"
    title = f"[{example.question_type}]\n{question}\npredicted: {example.predicted}  |  true: {example.answer} ({verdict})"
    ax.set_title(title, fontsize=8.5, color=color, loc="center")


def vqa_examples_figure(examples: list[VQAExample]) -> Figure:
    """Up to 8 test images with question, predicted and true answer; green when right, red when wrong."""
    shown = examples[:MAX_VQA]
    cols = min(4, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = Figure(figsize=(3.1 * cols, 4.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, example in zip(axes, shown):
        _vqa_panel(ax, example)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    right = sum(e.correct for e in shown)
    fig.suptitle(f"VQA on Sort-of-CLEVR test images: {right}/{len(shown)} right", fontsize=12)
    return fig


# ---- retrieval examples ----------------------------------------------------------------------

_WRAP, _MAX_LINES = 112, 4


def _retrieval_lines(example: RetrievalExample) -> list[tuple[str, str, str]]:
    """(text, colour, weight) per line: the query caption, then the top-3 captions, each wrapped."""
    def wrapped(text: str, first: str, indent: str) -> list[str]:
        return textwrap.wrap(text, _WRAP, initial_indent=first, subsequent_indent=indent,
                             max_lines=_MAX_LINES, placeholder=" ...")

    lines = [(line, "black", "normal") for line in wrapped(example.query, "query caption: ", "    ")]
    lines.append(("image -> text, top 3:", "black", "bold"))
    for rank, (caption, own) in enumerate(example.top_captions, 1):
        mark, color = ("[correct]", RIGHT) if own else ("[other]", WRONG)
        lines += [(line, color, "normal") for line in wrapped(caption, f"{rank}. {mark} ", "      ")]
    return lines


def _retrieval_row(image_ax: Axes, text_ax: Axes, example: RetrievalExample, lines: list[tuple[str, str, str]]) -> None:
    image_ax.imshow(upscaled(example.image_png), interpolation="nearest")
    image_ax.set_xticks([])
    image_ax.set_yticks([])
    for spine in image_ax.spines.values():
        spine.set_color(MUTED)
    text_ax.set_axis_off()
    step = 1.0 / max(len(lines), 1)
    for i, (text, color, weight) in enumerate(lines):
        text_ax.text(0.0, 1.0 - (i + 0.5) * step, text, color=color, fontweight=weight, fontsize=9,
                     va="center", ha="left", transform=text_ax.transAxes, family="DejaVu Sans Mono")


def retrieval_examples_figure(examples: list[RetrievalExample]) -> Figure:
    """Up to 4 test images, each beside its top-3 retrieved captions with the image's own marked."""
    shown = examples[:MAX_RETRIEVAL]
    blocks = [_retrieval_lines(e) for e in shown]
    heights = [max(len(lines), 13) for lines in blocks]  # an image row is at least 13 text lines tall
    fig = Figure(figsize=(13.0, 0.19 * sum(heights) + 0.6), layout="constrained")
    grid = fig.add_gridspec(len(shown), 2, width_ratios=[1, 4.2], height_ratios=heights)
    for row, (example, lines) in enumerate(zip(shown, blocks)):
        _retrieval_row(fig.add_subplot(grid[row, 0]), fig.add_subplot(grid[row, 1]), example, lines)
    hits = sum(bool(e.top_captions) and e.top_captions[0][1] for e in shown)
    fig.suptitle(f"image -> text retrieval on test images: top-1 right for {hits}/{len(shown)}", fontsize=12)
    return fig


def write_figures(results: QuickstartResults, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write loss_curves.png, vqa_examples.png and retrieval_examples.png (those with data) under `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    if results.stages:
        paths.append(_save(loss_curves_figure(results.stages), out / "loss_curves.png"))
    if results.vqa_examples:
        paths.append(_save(vqa_examples_figure(results.vqa_examples), out / "vqa_examples.png"))
    if results.retrieval_examples:
        paths.append(_save(retrieval_examples_figure(results.retrieval_examples), out / "retrieval_examples.png"))
    return paths
