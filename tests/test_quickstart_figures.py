"""The quickstart's loss-curve figure: a panel per stage, periodic validation drawn as curves, legends clear
of the plots, chance levels where they are known."""

from __future__ import annotations

import math
import random
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from vlbert.quickstart.figures import ITM_CHANCE_LOSS, loss_curves_figure, write_figures
from vlbert.quickstart.results import QuickstartResults, StageResult

BATCH = 64
EVAL_EVERY = 50
# per stage: training loss parts and the eval metrics its evaluation writes (as the trainer's metrics.json)
STAGES = {
    "pretrain": (("mlm", "mrm", "itm", "itc"), ("mlm_acc", "itm_acc")),
    "vqa": (("vqa",), ("vqa_acc", "vqa_acc_relational", "vqa_acc_nonrelational", "vqa_acc_subtype_shape",
                       "vqa_acc_subtype_count")),
    "question-only": (("vqa",), ("vqa_acc", "vqa_acc_relational", "vqa_acc_nonrelational")),
    "retrieval": (("itc", "itm"), ("t2i_r1", "t2i_r5", "t2i_r10", "i2t_r1", "i2t_r5", "i2t_r10", "num_images")),
    "caption": (("caption",), ("bleu4", "cider")),
}


def _history(steps: int, parts: tuple[str, ...], metrics: tuple[str, ...], seed: int) -> list[dict[str, float]]:
    rng = random.Random(seed)
    rows: list[dict[str, float]] = []
    for step in range(10, steps + 1, 10):
        values = {p: (1.0 + i) * (math.exp(-step / 150) + 0.15) * rng.uniform(0.85, 1.15)
                  for i, p in enumerate(parts)}
        rows.append({"step": step, "loss": sum(values.values()), "lr": 1e-4,
                     **{f"loss_{p}": v for p, v in values.items()}})
        if step % EVAL_EVERY == 0:
            fraction = 1 - math.exp(-step / 200)
            evals = {m: 1000.0 if m == "num_images" else 2.5 * fraction if m == "cider" else fraction * (0.9 - 0.05 * i)
                     for i, m in enumerate(metrics)}
            rows.append({"step": step, "eval_loss": rows[-1]["loss"] * 1.1,
                         **{f"eval_{m}": v for m, v in evals.items()}})
    return rows


def make_stages(steps: int = 400) -> list[StageResult]:
    return [StageResult(name, 30.0, steps, {}, _history(steps, parts, metrics, seed))
            for seed, (name, (parts, metrics)) in enumerate(STAGES.items())]


def make_results(stages: list[StageResult]) -> QuickstartResults:
    return QuickstartResults(vqa={}, retrieval={}, caption={}, pretrain={}, transfer=None, stages=stages, vqa_examples=[],
                             retrieval_examples=[], wall_seconds=1.0, machine="test", settings={"batch_size": BATCH})


def _panels(fig: Figure) -> list[list[Axes]]:
    """The figure's axes grouped by panel: a stage's axes and its right-hand (twin) axes share x."""
    groups: list[list[Axes]] = []
    for ax in fig.axes:
        if not any(ax in group for group in groups):
            groups.append(list(ax.get_shared_x_axes().get_siblings(ax)))
    return groups


def _main(panel: list[Axes]) -> Axes:
    (ax,) = [ax for ax in panel if ax.get_legend() is not None]
    return ax


def test_loss_curves_png_is_written(tmp_path: Path) -> None:
    paths = write_figures(make_results(make_stages()), tmp_path)
    assert [p.name for p in paths] == ["loss_curves.png"]
    with Image.open(paths[0]) as image:
        assert image.format == "PNG"
        assert 1000 <= image.width <= 3000 and 500 <= image.height <= 2000, image.size


def test_one_panel_per_stage_and_none_blank() -> None:
    stages = make_stages()
    stages.append(StageResult("empty", 0.0, 0, {}, []))  # no history: no panel
    fig = loss_curves_figure(stages, BATCH)
    panels = _panels(fig)
    assert len(panels) == 5
    assert all(ax.get_visible() for ax in fig.axes)
    titles = [_main(panel).get_title() for panel in panels]
    assert [title.split(" (")[0] for title in titles] == list(STAGES)
    for panel in panels:
        assert any(ax.lines for ax in panel)


def test_legends_are_clear_of_the_plots() -> None:
    fig = loss_curves_figure(make_stages(), BATCH)
    canvas = FigureCanvasAgg(fig)  # a bare Figure has no renderer until a canvas draws it
    canvas.draw()
    renderer = canvas.get_renderer()
    plots = [ax.get_window_extent(renderer) for ax in fig.axes]
    for panel in _panels(fig):
        legend = _main(panel).get_legend().get_window_extent(renderer)
        for plot in plots:
            assert not legend.overlaps(plot), (legend, plot)
        for ax in panel:  # nor over the step label, nor the tick labels
            assert not legend.overlaps(ax.xaxis.label.get_window_extent(renderer))
    legends = [_main(panel).get_legend().get_window_extent(renderer) for panel in _panels(fig)]
    assert not any(a.overlaps(b) for i, a in enumerate(legends) for b in legends[i + 1:])
    figure_box = fig.bbox
    for box in legends:
        assert box.x0 >= figure_box.x0 and box.x1 <= figure_box.x1 and box.y0 >= figure_box.y0


def test_periodic_evaluation_is_a_curve_on_a_unit_right_axis() -> None:
    stages = make_stages()
    fig = loss_curves_figure(stages, BATCH)
    for stage, panel in zip(stages, _panels(fig)):
        evals = [row for row in stage.history if any(k.startswith("eval_") for k in row)]
        assert len(evals) == 400 // EVAL_EVERY
        twin = next(ax for ax in panel if ax.get_legend() is None)
        assert twin.get_ylim() == (0.0, 1.0)
        curves = [line for line in twin.lines if line.get_marker() not in (None, "None", "")]
        assert curves, stage.name
        for line in curves:
            assert len(line.get_xdata()) == len(evals), (stage.name, line.get_label())
            assert all(0.0 <= y <= 1.0 for y in line.get_ydata())
        labels = [line.get_label() for line in curves]
        assert not any("cider" in label or "num_images" in label for label in labels)
        main = _main(panel)
        (val_loss,) = [line for line in main.lines if line.get_label() == "val loss"]
        assert len(val_loss.get_xdata()) == len(evals)


def test_chance_levels_are_labelled() -> None:
    fig = loss_curves_figure(make_stages(), BATCH)
    pretrain = _main(_panels(fig)[0])
    labels = pretrain.get_legend_handles_labels()[1]
    assert f"itm chance ({ITM_CHANCE_LOSS:.2f})" in labels
    assert f"itc chance (ln {BATCH} = {math.log(BATCH):.2f})" in labels
    assert abs(ITM_CHANCE_LOSS - 0.6365) < 1e-3
    # a stage with its own batch (pre-training's) gets its own ITC chance; the others keep BATCH's
    fig = loss_curves_figure(make_stages(), BATCH, {"pretrain": 32})
    panels = _panels(fig)
    assert f"itc chance (ln 32 = {math.log(32):.2f})" in _main(panels[0]).get_legend_handles_labels()[1]
    retrieval = _main(panels[[_main(p).get_title().split(" (")[0] for p in panels].index("retrieval")])
    assert f"itc chance (ln {BATCH} = {math.log(BATCH):.2f})" in retrieval.get_legend_handles_labels()[1]
    # without the batch size the ITC chance loss is unknown: no line rather than a wrong one
    fig = loss_curves_figure(make_stages(), None)
    labels = _main(_panels(fig)[0]).get_legend_handles_labels()[1]
    assert not any(label.startswith("itc chance") for label in labels)


def test_a_stage_with_only_eval_rows_still_gets_its_panel() -> None:
    rows = [{"step": s, "eval_vqa_acc": s / 100} for s in (10, 20, 30)]
    fig = loss_curves_figure([StageResult("vqa", 1.0, 30, {}, rows)], None)
    (panel,) = _panels(fig)
    twin = next(ax for ax in panel if ax.get_legend() is None)
    assert len(twin.lines[0].get_xdata()) == 3


def test_seven_stages_seven_panels_and_plain_log_labels() -> None:
    stages = make_stages()
    stages += [StageResult(f"ablation-{kind}", 1.0, 400, {}, stages[1].history) for kind in ("pretrained", "scratch")]
    fig = loss_curves_figure(stages, BATCH)
    assert len(_panels(fig)) == 7 and all(ax.get_visible() for ax in fig.axes)
    pretrain = _main(_panels(fig)[0])
    assert pretrain.get_yscale() == "log"  # ln 64 against a part near 0.15
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    labels = [t.get_text() for t in pretrain.get_yticklabels(which="both") if t.get_text()]
    assert labels and not any("e" in label or "^" in label or "times" in label for label in labels), labels
