"""Which way of drawing an answer's map marks the object the question names? The grounding score
(`vlbert.run.grounding`) of a VQA model for the demo's methods (occlusion, removal, co-attention) and
two gradient x input maps that vlbert does not ship: on the region features, and on the visual
embeddings (features and box as the visual stream first sees them).

    python tools/answer_map_methods.py runs/quickstart/vqa/model --seed 0 --images 60
"""

from __future__ import annotations

import argparse

import torch

from vlbert.data.sources.sort_of_clevr.scenes import NONRELATIONAL
from vlbert.run.grounding import MapDrawer, method_drawer, score_drawers
from vlbert.run.map_methods import MAP_METHODS
from vlbert.run.predict import Predictor


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a VQA model directory that reads regions")
    parser.add_argument("--seed", type=int, default=0, help="the seed the built-in data was generated with")
    parser.add_argument("--images", type=int, default=60, help="test images scored")
    return parser


def gradient_scores(predictor: Predictor, inputs: dict[str, torch.Tensor], question: str) -> dict[str, torch.Tensor]:
    """Gradient x input of the top answer's logit, per region: on the region features [N] and on
    the visual embeddings [N] (the IMG token left out)."""
    model, captured = predictor.model, {}
    handle = model.vlbert.v_embeddings.register_forward_hook(lambda _m, _a, out: captured.update(states=out))
    try:
        features = inputs["region_features"].detach().requires_grad_(True)
        with torch.enable_grad():
            ids, mask = predictor.text_inputs(question)
            logits = model(ids, attention_mask=mask, region_features=features, region_boxes=inputs["region_boxes"]).logits[0]
            states = captured["states"]
            grad_features, grad_states = torch.autograd.grad(logits[logits.argmax()], [features, states])
    finally:
        handle.remove()
    skip = 1 if model.config.add_global_image_token else 0
    return {"gradient, features": (grad_features * features.detach())[0].sum(-1),
            "gradient, embeddings": (grad_states * states.detach())[0, skip:].sum(-1)}


def gradient_drawers(predictor: Predictor) -> dict[str, MapDrawer]:
    """Both gradient x input maps as drawers, from one backward pass per question."""
    last: dict[str, object] = {}

    def drawer(name: str) -> MapDrawer:
        def draw(inputs: dict[str, torch.Tensor], question: str) -> tuple[torch.Tensor, torch.Tensor]:
            if last.get("key") != (id(inputs), question):
                last.update(key=(id(inputs), question), scores=gradient_scores(predictor, inputs, question))
            return last["scores"][name].abs(), inputs["region_boxes"][0]
        return draw

    return {name: drawer(name) for name in ("gradient, features", "gradient, embeddings")}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    predictor = Predictor(args.model)
    drawers = {**{method: method_drawer(predictor, method) for method in MAP_METHODS}, **gradient_drawers(predictor)}
    scores = score_drawers(predictor, args.seed, args.images, drawers)
    print(f"map | {' | '.join(NONRELATIONAL)}   (share of questions whose top region is the named object)")
    for name, score in scores.items():
        shares = score.shares()
        print(f"{name} | " + " | ".join(f"{shares[s]:.3f}" for s in NONRELATIONAL if s in shares))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
