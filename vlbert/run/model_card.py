"""The model card (`README.md`) written next to every model a run saves: what the model is, what
it was trained on, how it scored, and what it is for."""

from __future__ import annotations

from pathlib import Path

from vlbert.eval.saved import RunParts
from vlbert.runconfig import RunConfig

INTENDED_USE = {  # one per task of `vlbert.tasks.TASKS`
    "pretraining": "a starting point for fine-tuning (`vlbert finetune ... model.init=DIR`); not a task model.",
    "vqa": "answering questions about images like those it was trained on, from its answer vocabulary.",
    "retrieval": "ranking images for a caption and captions for an image (ITC top-k, ITM re-rank).",
    "captioning": "describing images like those it was trained on.",
}


def model_card(cfg: RunConfig, parts: RunParts, steps: int, metrics: dict[str, float]) -> str:
    """Markdown: configuration, data, training, metrics, intended use and limitations."""
    mc = parts.model.config
    params = sum(p.numel() for p in parts.model.parameters())
    image_input = {"regions": f"detector regions ({mc.v_feature_size}-d features + 5-d boxes)",
                   "vit": f"a timm ViT ({mc.image_model}) over pixels", "cnn": f"a timm CNN grid ({mc.image_model})"}
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())) or "| (no evaluation split) | |"
    answers = f"\n- Answer vocabulary: {len(parts.answers)} answers (`answers.json`)." if parts.answers else ""
    return f"""# vlbert {cfg.task} model

A ViLBERT-family model trained with vlbert. Load it with `vlbert.create_model(DIR, task="{cfg.task}")`.

## Model

- Parameters: {params:,}
- Text stream: {mc.num_hidden_layers} layers, hidden {mc.hidden_size}, {mc.num_attention_heads} heads; vocabulary {len(parts.tokenizer)} tokens.
- Visual stream: {mc.v_num_hidden_layers} layers, hidden {mc.v_hidden_size}; input: {image_input.get(mc.image_encoder, mc.image_encoder)}.
- Co-attention: {len(mc.t_biattention_id)} blocks after text layers {mc.t_biattention_id} and visual layers {mc.v_biattention_id}; fusion `{mc.fusion_method}`.{answers}

## Training

- Task: `{cfg.task}`, {steps} optimizer steps, batch {cfg.data.batch_size} per process, learning rate {cfg.train.optim.lr}.
- Data: `{cfg.data.root}`, split `{cfg.data.train_split}`{f", {cfg.data.label_fraction:.0%} of the labels" if cfg.data.label_fraction < 1 else ""}.
- Initialised from: `{cfg.model.init or cfg.model.text_pretrained or "random (" + cfg.model.name + ")"}`.
- The full run configuration is `config.yaml` in the run directory.

## Evaluation (split `{cfg.data.val_split}`)

| metric | value |
|---|---|
{rows}

## Intended use and limitations

Intended use: {INTENDED_USE.get(cfg.task, "research.")}
The model knows only what its training data shows; scores on other data will differ. Check
outputs before relying on them, and do not use it to make decisions about people.
"""


def write_model_card(directory: Path, cfg: RunConfig, parts: RunParts, steps: int, metrics: dict[str, float]) -> None:
    (directory / "README.md").write_text(model_card(cfg, parts, steps, metrics))
