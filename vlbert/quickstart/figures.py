"""The quickstart's figures: loss curves, VQA examples, retrieval examples (PNG, matplotlib Agg).

Figures are built as `matplotlib.figure.Figure` objects, not through pyplot, so no global backend
or figure registry is touched and nothing needs a display. matplotlib is the `plots` extra.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

from vlbert._extras import require
from vlbert.quickstart.results import QuickstartResults, RetrievalExample, StageResult, VQAExample

matplotlib = require("matplotlib", "the quickstart's figures")

# after the check above, so that a missing matplotlib is one line naming its extra
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

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

# one colour per curve within a panel: loss parts first, then eval metrics (tab10 without grey)
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
# eval metrics worth a curve first (a stage logs up to a dozen); the rest only while there is room
_EVAL_FIRST = ("vqa_acc", "vqa_acc_relational", "vqa_acc_nonrelational", "t2i_r1", "i2t_r1", "t2i_r5", "i2t_r5",
               "bleu4", "mlm_acc", "itm_acc")
_NOT_A_FRACTION = ("cider", "num_images", "num_texts")
# ITM is trained and evaluated on B matched pairs and up to 2B re-paired negatives: a model that only
# knows that prior has loss H(1/3) and accuracy 2/3
ITM_CHANCE_LOSS = -(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3)
ITM_CHANCE_ACC = 2 / 3
TITLE_FONT, LABEL_FONT, TICK_FONT, LEGEND_FONT = 11, 9, 8, 8
SMOOTH_POINTS = 40  # a running mean over ~1/40 of a stage's training rows


def _series(history: list[dict[str, float]], key: str) -> tuple[list[float], list[float]]:
    rows = [row for row in history if row.get(key) is not None and math.isfinite(row[key])]
    return [row["step"] for row in rows], [row[key] for row in rows]


def _smoothed(values: list[float], points: int = SMOOTH_POINTS) -> np.ndarray:
    """A trailing running mean over len/points rows (at least 1); the first rows average what there is."""
    x = np.asarray(values, dtype=float)
    window = max(1, len(x) // points)
    if window == 1:
        return x
    sums = np.cumsum(np.insert(x, 0, 0.0))
    ends = np.arange(1, len(x) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)


def _eval_keys(history: list[dict[str, float]]) -> list[str]:
    """Eval metrics drawn on the right axis: those that stay within [0, 1] (accuracies, recalls, BLEU)."""
    fits: dict[str, bool] = {}
    for row in history:
        for key, value in row.items():
            name = key.removeprefix("eval_")
            if key.startswith("eval_") and "loss" not in key and name not in _NOT_A_FRACTION:
                ok = value is None or (isinstance(value, (int, float)) and (math.isnan(value) or 0.0 <= value <= 1.0))
                fits[key] = fits.get(key, True) and ok
    keys = [key for key, ok in fits.items() if ok and _series(history, key)[0]]
    rank = {f"eval_{name}": i for i, name in enumerate(_EVAL_FIRST)}
    return sorted(keys, key=lambda k: rank.get(k, len(rank)))[:MAX_EVAL_CURVES]


def _chance_lines(parts: list[str], batch_size: int | None) -> dict[str, tuple[float, str]]:
    """Loss part -> (chance loss, legend label) for the parts whose chance level is known."""
    lines = {}
    if "loss_itm" in parts:
        lines["loss_itm"] = (ITM_CHANCE_LOSS, f"itm chance ({ITM_CHANCE_LOSS:.2f})")
    if "loss_itc" in parts and batch_size and batch_size > 1:
        lines["loss_itc"] = (math.log(batch_size), f"itc chance (ln {batch_size} = {math.log(batch_size):.2f})")
    return lines


def _minor_log_label(value: float, _position: object = None) -> str:
    """Label the 2s and 5s between the decades of a log axis (0.2, 0.5, 2, 5), not the rest."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:g}" if round(mantissa, 6) in (2.0, 5.0) else ""


def _below_xlabel(tick_font: float, label_font: float) -> float:
    """Points from an axes' bottom edge to below its x label: tick, pad, tick labels, label pad, label."""
    rc = matplotlib.rcParams
    return rc["xtick.major.size"] + rc["xtick.major.pad"] + 1.3 * tick_font + rc["axes.labelpad"] + 1.3 * label_font


def _loss_panel(ax: Axes, stage: StageResult, batch_size: int | None = None) -> None:
    ax.set_title(f"{stage.name} ({stage.steps} steps)", fontsize=TITLE_FONT)
    ax.set_xlabel("step", fontsize=LABEL_FONT)
    ax.tick_params(labelsize=TICK_FONT)
    ax.grid(True, color="#d0d7de", lw=0.5)
    colors = iter(_PALETTE * 3)
    steps, loss = _series(stage.history, "loss")
    parts = sorted({k for row in stage.history for k in row if k.startswith("loss_") and _series(stage.history, k)[0]})
    chance = _chance_lines(parts, batch_size)
    if steps:  # a stage with one part (vqa, caption): the part is the loss, one curve is enough
        label = f"loss ({parts[0].removeprefix('loss_')})" if len(parts) == 1 else "loss"
        ax.plot(steps, _smoothed(loss), color="black", lw=1.6, label=label)
    drawn = list(loss)
    for key in parts:
        color = "black"
        if len(parts) > 1 or not steps:
            part_steps, values = _series(stage.history, key)
            color = next(colors)
            ax.plot(part_steps, _smoothed(values), color=color, lw=1.0, label=key.removeprefix("loss_"))
            drawn += values
        if key in chance:
            level, label = chance[key]
            ax.axhline(level, color=color, lw=1.0, ls=":", label=label)
            drawn.append(level)
    eval_steps, eval_loss = _series(stage.history, "eval_loss")
    if eval_steps:
        ax.plot(eval_steps, eval_loss, "x--", color="black", ms=5, lw=0.8, label="val loss")
        drawn += eval_loss
    positive = [v for v in drawn if v > 0]
    if positive and min(positive) == min(drawn) and max(positive) / min(positive) > 20:
        ax.set_yscale("log")  # plain numbers (0.3, 1, 4), not 3 x 10^-1
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(_minor_log_label))
        ax.tick_params(which="minor", labelsize=TICK_FONT - 1)
    ax.set_ylabel("training loss" if steps else "loss", fontsize=LABEL_FONT)
    handles, labels = ax.get_legend_handles_labels()
    keys = _eval_keys(stage.history)
    if keys:
        twin = ax.twinx()
        marker_size = 4 if len(_series(stage.history, keys[0])[0]) <= 25 else 2.5
        for key in keys:
            twin.plot(*_series(stage.history, key), "o-", color=next(colors), ms=marker_size, lw=1.2,
                      label=f"val {key.removeprefix('eval_')}")
        if "eval_itm_acc" in keys:
            twin.axhline(ITM_CHANCE_ACC, color=twin.lines[keys.index("eval_itm_acc")].get_color(), lw=1.0, ls="-.",
                         label=f"itm acc chance ({ITM_CHANCE_ACC:.2f})")
        twin.set_ylim(0.0, 1.0)
        twin.set_ylabel("validation metric", fontsize=LABEL_FONT)
        twin.tick_params(labelsize=TICK_FONT)
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if not handles:
        ax.text(0.5, 0.5, "no training log", ha="center", va="center", transform=ax.transAxes, color=MUTED)
        return
    # below the panel, under the tick labels and the step label, so that it never hides a curve
    ax.legend(handles, labels, fontsize=LEGEND_FONT, loc="upper center", bbox_to_anchor=(0.5, 0.0),
              borderaxespad=_below_xlabel(TICK_FONT, LABEL_FONT) / LEGEND_FONT,
              ncols=min(len(labels), 3), frameon=False, handlelength=1.8, columnspacing=1.2)


def loss_curves_figure(stages: list[StageResult], batch_size: int | None = None,
                       stage_batch: dict[str, int] | None = None) -> Figure:
    """One panel per stage with a history: training loss (and its parts, smoothed) against step on the left
    axis, validation metrics in [0, 1] on a right axis, chance levels dotted, each legend under its panel.

    `batch_size` gives the ITC chance loss (ln B), `stage_batch` a stage's own batch where it differs
    (the pre-training stage's); without one that line is left out. A last row with fewer panels is
    centred, so that no panel is blank."""
    shown = [stage for stage in stages if stage.history]
    fig = Figure(layout="constrained")
    if not shown:
        return fig
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig.set_size_inches(5.6 * cols, 4.6 * rows)
    grid = fig.add_gridspec(rows, 2 * cols)  # a panel spans two columns, so that a short last row can be centred
    for i, stage in enumerate(shown):
        row, col = divmod(i, cols)
        in_row = min(cols, len(shown) - row * cols)
        start = (cols - in_row) + 2 * col
        _loss_panel(fig.add_subplot(grid[row, start:start + 2]), stage, (stage_batch or {}).get(stage.name, batch_size))
    fig.suptitle("quickstart training curves (lines: training loss, smoothed; markers: validation)", fontsize=13)
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
    if any(stage.history for stage in results.stages):
        batch_size, pretrain_batch = results.settings.get("batch_size"), results.settings.get("pretrain_batch_size")
        figure = loss_curves_figure(results.stages, batch_size if isinstance(batch_size, int) else None,
                                    {"pretrain": pretrain_batch} if isinstance(pretrain_batch, int) else None)
        paths.append(_save(figure, out / "loss_curves.png"))
    if results.vqa_examples:
        paths.append(_save(vqa_examples_figure(results.vqa_examples), out / "vqa_examples.png"))
    if results.retrieval_examples:
        paths.append(_save(retrieval_examples_figure(results.retrieval_examples), out / "retrieval_examples.png"))
    return paths
