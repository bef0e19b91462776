"""Sort-of-CLEVR (Santoro et al. 2017, "A simple neural network module for relational reasoning").

The published generator: 75x75 RGB images on white, six 11x11-pixel objects (centre +- 5 px), one
of each colour (red, green, blue, orange, gray, yellow), each a square or a circle. Per image,
10 non-relational questions (the shape of the X object; is it on the left or right; on the top or
bottom) and 10 relational ones (the shape of the object closest to X; furthest from X; how many
objects have the same shape as X), each with a random colour and subtype. Answers are words; the
reference's 10-class vocabulary is recovered with :func:`reference_answer_index`.

Two deliberate differences from the reference script: objects never overlap (the reference only
keeps centres 10 px apart, so squares could overlap), and every image has its own random stream,
seeded by (seed, split, index), so images can be generated in any order, in parallel or resumed.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

IMAGE_SIZE = 75
HALF_SIZE = 5  # an object covers centre - 5 .. centre + 5 inclusive: 11 x 11 pixels
MIN_GAP = 1  # blank pixels kept between any two objects' boxes
BACKGROUND = (255, 255, 255)
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "orange": (255, 156, 0),
    "gray": (128, 128, 128),
    "yellow": (255, 255, 0),
}
SHAPES = ("square", "circle")
NONRELATIONAL = ("shape", "horizontal", "vertical")
RELATIONAL = ("closest", "furthest", "count")
ANSWERS = ("square", "circle", "left", "right", "top", "bottom", "1", "2", "3", "4", "5", "6")
QUESTIONS_PER_TYPE = 10

QUESTION_TEMPLATES = {
    "shape": "what is the shape of the {} object?",
    "horizontal": "is the {} object on the left or right of the image?",
    "vertical": "is the {} object on the top or bottom of the image?",
    "closest": "what is the shape of the object that is closest to the {} object?",
    "furthest": "what is the shape of the object that is furthest from the {} object?",
    "count": "how many objects have the same shape as the {} object?",
}


@dataclass(frozen=True)
class SceneObject:
    """One object: colour, shape and its centre pixel (column x, row y)."""

    color: str
    shape: str
    x: int
    y: int

    @property
    def label(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def box(self) -> list[int]:
        """Pixel box x1, y1, x2, y2 with exclusive x2, y2: exactly the drawn 11 x 11 pixels."""
        return [self.x - HALF_SIZE, self.y - HALF_SIZE, self.x + HALF_SIZE + 1, self.y + HALF_SIZE + 1]


@dataclass(frozen=True)
class Scene:
    """The six objects of one image, in the fixed colour order of :data:`COLORS`."""

    objects: tuple[SceneObject, ...]
    size: int = IMAGE_SIZE

    def find(self, color: str) -> SceneObject:
        for obj in self.objects:
            if obj.color == color:
                return obj
        raise KeyError(f"no {color} object in the scene")


@dataclass(frozen=True)
class SceneQuestion:
    """A question about one coloured object, with its answer word."""

    type: str  # "nonrelational" or "relational"
    subtype: str  # one of NONRELATIONAL or RELATIONAL
    color: str
    question: str
    answer: str


def image_rng(seed: int, split: str, index: int) -> random.Random:
    """The random stream of one image: independent of every other image, stable across runs."""
    return random.Random(f"sort-of-clevr/{seed}/{split}/{index}")


def _far_enough(x: int, y: int, placed: list[SceneObject]) -> bool:
    """True when the new object's box keeps MIN_GAP blank pixels to every placed box."""
    reach = 2 * HALF_SIZE + 1 + MIN_GAP
    return all(abs(x - o.x) >= reach or abs(y - o.y) >= reach for o in placed)


def sample_scene(rng: random.Random, size: int = IMAGE_SIZE) -> Scene:
    """Place one object of each colour at a random free spot, a square or a circle with p = 0.5."""
    placed: list[SceneObject] = []
    for color in COLORS:
        while True:  # rejection sampling; six small objects always fit, a few tries suffice
            x = rng.randint(HALF_SIZE, size - HALF_SIZE - 1)
            y = rng.randint(HALF_SIZE, size - HALF_SIZE - 1)
            if _far_enough(x, y, placed):
                break
        shape = SHAPES[0] if rng.random() < 0.5 else SHAPES[1]
        placed.append(SceneObject(color, shape, x, y))
    return Scene(tuple(placed), size)


def render_scene(scene: Scene) -> Image.Image:
    """Draw the scene: solid, non-antialiased shapes, so every object pixel has its exact colour."""
    image = Image.new("RGB", (scene.size, scene.size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        corners = [obj.x - HALF_SIZE, obj.y - HALF_SIZE, obj.x + HALF_SIZE, obj.y + HALF_SIZE]  # inclusive
        if obj.shape == "square":
            draw.rectangle(corners, fill=COLORS[obj.color])
        else:
            draw.ellipse(corners, fill=COLORS[obj.color])
    return image


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def neighbour(scene: Scene, target: SceneObject, closest: bool = True) -> SceneObject:
    """The object closest to (or furthest from) ``target``; ties go to the first in colour order."""
    distances = [((o.x - target.x) ** 2 + (o.y - target.y) ** 2, o) for o in scene.objects if o is not target]
    best = (min if closest else max)(d for d, _ in distances)
    return next(o for d, o in distances if d == best)


def answer_question(scene: Scene, subtype: str, color: str) -> str:
    """The answer word to question ``subtype`` about the ``color`` object."""
    target = scene.find(color)
    half = scene.size / 2
    if subtype == "shape":
        return target.shape
    if subtype == "horizontal":
        return "left" if target.x < half else "right"
    if subtype == "vertical":
        return "top" if target.y < half else "bottom"
    if subtype in ("closest", "furthest"):
        return neighbour(scene, target, closest=subtype == "closest").shape
    if subtype == "count":
        return str(sum(o.shape == target.shape for o in scene.objects))
    raise ValueError(f"unknown question subtype {subtype!r}")


def make_question(scene: Scene, subtype: str, color: str) -> SceneQuestion:
    kind = "relational" if subtype in RELATIONAL else "nonrelational"
    text = QUESTION_TEMPLATES[subtype].format(color)
    return SceneQuestion(kind, subtype, color, text, answer_question(scene, subtype, color))


def sample_questions(scene: Scene, rng: random.Random, per_type: int = QUESTIONS_PER_TYPE) -> list[SceneQuestion]:
    """``per_type`` non-relational then ``per_type`` relational questions, random colour and subtype."""
    colors = list(COLORS)
    asked: dict[tuple[str, str], SceneQuestion] = {}  # repeats are common: answer each pair once
    questions = []
    for subtypes in (NONRELATIONAL, RELATIONAL):
        for _ in range(per_type):
            color = colors[int(rng.random() * len(colors))]
            subtype = subtypes[int(rng.random() * len(subtypes))]
            if (subtype, color) not in asked:
                asked[subtype, color] = make_question(scene, subtype, color)
            questions.append(asked[subtype, color])
    return questions


def reference_answer_index(answer: str) -> int:
    """The class of ``answer`` in the reference's 10-way output [yes, no, rectangle, circle, 1..6].

    There "yes" means left (horizontal) or top (vertical), and counts are stored as 0..5 *other*
    objects with the same shape in classes 4..9, i.e. our count "k" is class k + 3.
    """
    fixed = {"left": 0, "top": 0, "right": 1, "bottom": 1, "square": 2, "circle": 3}
    if answer in fixed:
        return fixed[answer]
    if answer.isdigit() and 1 <= int(answer) <= len(COLORS):
        return int(answer) + 3
    raise ValueError(f"{answer!r} is not a Sort-of-CLEVR answer")
