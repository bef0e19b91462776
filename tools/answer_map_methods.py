"""Which way of drawing an answer's map marks the object the question names? The grounding score
(`vlbert.run.grounding`) of a VQA model for the demo's methods (occlusion, removal, co-attention) and
two gradient x input maps that vlbert does not ship: on the region features, and on the visual
embeddings (features and box as the visual stream first sees them).

    python tools/answer_map_methods.py runs/quickstart/vqa/model --seed 0 --images 60
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch

from vlbert.data.sources.sort_of_clevr.scenes import (
    NONRELATIONAL,
    image_rng,
    render_scene,
    sample_questions,
    sample_scene,
)
from vlbert.run.answer_maps import answer_map
from vlbert.run.grounding import DETECTOR, top_region_is
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    predictor = Predictor(args.model)
    hits: dict[str, Counter] = {}
    asked: Counter = Counter()
    for index in range(args.images):
        rng = image_rng(args.seed, "test", index)
        scene = sample_scene(rng)
        questions = {q.question: q for q in sample_questions(scene, rng) if q.subtype in NONRELATIONAL}
        inputs = predictor.image_inputs(render_scene(scene), detector=DETECTOR)
        boxes = inputs["region_boxes"][0]
        for q in questions.values():
            asked[q.subtype] += 1
            maps = {method: answer_map(predictor, inputs, q.question, method) for method in MAP_METHODS}
            weights = {method: (m.weights, m.boxes) for method, m in maps.items()}
            weights.update({name: (s.abs(), boxes) for name, s in gradient_scores(predictor, inputs, q.question).items()})
            for name, (w, b) in weights.items():
                hits.setdefault(name, Counter())[q.subtype] += top_region_is(scene, q.color, w, b)
    print(f"map | {' | '.join(NONRELATIONAL)}   (share of questions whose top region is the named object)")
    for name, counts in hits.items():
        print(f"{name} | " + " | ".join(f"{counts[s] / asked[s]:.3f}" for s in NONRELATIONAL if asked[s]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
