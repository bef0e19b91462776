"""Does an answer's map point at the object the question names? The grounding score: over
built-in Sort-of-CLEVR scenes, for each question that names an object by its colour, whether the
region the map weights most is that object.

The scenes are regenerated from their seed and split exactly as `make-shards sort-of-clevr`
wrote them (`image_rng`), so "test" means the held-out test images; their regions come from the
built-in detector, as the demo finds them (pixel models read the picture instead). A region
"is" the object whose box it overlaps most.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

from vlbert.data.sources.sort_of_clevr.scenes import (
    NONRELATIONAL,
    Scene,
    image_rng,
    render_scene,
    sample_questions,
    sample_scene,
)
from vlbert.run.answer_maps import answer_map, check_map_method
from vlbert.run.map_methods import DEFAULT_MAP_METHOD
from vlbert.run.predict import Predictor

DETECTOR = "sort-of-clevr"


@dataclass
class GroundingScore:
    method: str
    hits: Counter = field(default_factory=Counter)  # subtype -> questions whose top region is the named object
    questions: Counter = field(default_factory=Counter)  # subtype -> questions scored

    def shares(self) -> dict[str, float]:
        return {subtype: self.hits[subtype] / count for subtype, count in self.questions.items() if count}

    def as_dict(self, prefix: str = "grounding") -> dict[str, float]:
        return {f"{prefix}_{subtype}": share for subtype, share in sorted(self.shares().items())}


def object_under(scene: Scene, box: list[float]) -> str | None:
    """The colour of the object that the normalised box [x1, y1, x2, y2] overlaps most, or None
    when it overlaps none."""
    x1, y1, x2, y2 = (v * scene.size for v in box)
    best, best_area = None, 0.0
    for obj in scene.objects:
        ox1, oy1, ox2, oy2 = obj.box  # pixels, exclusive x2, y2
        area = max(0.0, min(x2, ox2) - max(x1, ox1)) * max(0.0, min(y2, oy2) - max(y1, oy1))
        if area > best_area:
            best, best_area = obj.color, area
    return best


def top_region_is(scene: Scene, color: str, weights: Tensor, boxes: Tensor) -> bool:
    """weights [N], boxes [N, 4] normalised: whether the most weighted region is the `color` object."""
    return object_under(scene, boxes[int(weights.argmax())].tolist()) == color


# a way to draw a map: (the image's inputs, the question) -> (weights [N], boxes [N, 4])
MapDrawer = Callable[[dict[str, Tensor], str], tuple[Tensor, Tensor]]


def grounding_scores(predictor: Predictor, seed: int, images: int, split: str = "test",
                     methods: tuple[str, ...] = (DEFAULT_MAP_METHOD,),
                     subtypes: tuple[str, ...] = NONRELATIONAL) -> dict[str, GroundingScore]:
    """The grounding score of `predictor`'s VQA model for each of `methods`, over images 0 ..
    `images` - 1 of the built-in data's `split` (generated with `seed`), on the questions of
    `subtypes`. Each scene is generated and its regions found once for every method."""
    drawers = {method: method_drawer(predictor, method) for method in methods}
    return score_drawers(predictor, seed, images, drawers, split, subtypes)


def method_drawer(predictor: Predictor, method: str) -> MapDrawer:
    """The `MapDrawer` of one of the demo's map methods (`answer_map`)."""
    check_map_method(method)

    def draw(inputs: dict[str, Tensor], question: str) -> tuple[Tensor, Tensor]:
        drawn = answer_map(predictor, inputs, question, method)
        return drawn.weights, drawn.boxes

    return draw


def score_drawers(predictor: Predictor, seed: int, images: int, drawers: dict[str, MapDrawer],
                  split: str = "test", subtypes: tuple[str, ...] = NONRELATIONAL) -> dict[str, GroundingScore]:
    """`grounding_scores` for maps drawn by any functions (`MapDrawer`), one score per name: for
    maps that are not among the demo's methods, such as gradient x input."""
    scores = {name: GroundingScore(name) for name in drawers}
    for index in range(images):
        rng = image_rng(seed, split, index)
        scene = sample_scene(rng)
        questions = {q.question: q for q in sample_questions(scene, rng) if q.subtype in subtypes}
        inputs = predictor.image_inputs(render_scene(scene), detector=DETECTOR)
        for question in questions.values():
            for name, draw in drawers.items():
                weights, boxes = draw(inputs, question.question)
                scores[name].questions[question.subtype] += 1
                scores[name].hits[question.subtype] += top_region_is(scene, question.color, weights, boxes)
    return scores


def grounding_score(predictor: Predictor, seed: int, images: int, split: str = "test",
                    method: str = DEFAULT_MAP_METHOD, subtypes: tuple[str, ...] = NONRELATIONAL) -> GroundingScore:
    """`grounding_scores` for one method."""
    return grounding_scores(predictor, seed, images, split, (method,), subtypes)[method]
