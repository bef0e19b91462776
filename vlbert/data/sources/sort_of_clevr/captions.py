"""Captions for Sort-of-CLEVR scenes, for pre-training, retrieval and captioning.

``make_captions`` gives five per image. The first is the *full description*: every object with its
colour, shape and cell of a 3 x 3 grid, then the left-to-right and top-to-bottom orders of the
colours. It is canonical (one string per scene layout up to those facts) and detailed enough to
pick its image out of thousands; :func:`parse_description` reads it back into a
:class:`SceneSignature`, e.g. to score generated captions. The other four are short: the objects in
random order, the shape counts, one spatial relation or position, and one closest/furthest fact.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from vlbert.data.sources.sort_of_clevr.scenes import COLORS, SHAPES, Scene, SceneObject, neighbour

ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "center", "right")
NUMBERS = ("no", "one", "two", "three", "four", "five", "six")
NUM_CAPTIONS = 5

_OBJECT = re.compile(r"an? (\w+) (square|circle) in the ([a-z]+(?: [a-z]+)?)(?=,| and |;)")
_ORDER = re.compile(r"from (left to right|top to bottom): ([a-z, ]+?)(?:;|\.)")


@dataclass(frozen=True)
class SceneSignature:
    """What the full description states: per colour (shape, grid cell), and the two orders."""

    objects: tuple[tuple[str, str, str], ...]  # (colour, shape, cell) in colour order
    left_to_right: tuple[str, ...]  # colours
    top_to_bottom: tuple[str, ...]  # colours


def grid_cell(obj: SceneObject, size: int) -> str:
    """The object's cell of a 3 x 3 grid: "top left", "middle right", "center", ..."""
    row, column = min(2, obj.y * 3 // size), min(2, obj.x * 3 // size)
    return "center" if (row, column) == (1, 1) else f"{ROWS[row]} {COLUMNS[column]}"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _named(obj: SceneObject) -> str:
    return f"{_article(obj.color)} {obj.label}"


def _join(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else items[0]


def _order(scene: Scene, axis: str) -> tuple[str, ...]:
    rank = {color: i for i, color in enumerate(COLORS)}
    ordered = sorted(scene.objects, key=lambda o: (getattr(o, axis), rank[o.color]))
    return tuple(o.color for o in ordered)


def scene_signature(scene: Scene) -> SceneSignature:
    objects = tuple((o.color, o.shape, grid_cell(o, scene.size)) for o in scene.objects)
    return SceneSignature(objects, _order(scene, "x"), _order(scene, "y"))


def describe_scene(scene: Scene) -> str:
    """The canonical full description (always ``captions[0]``)."""
    return describe_signature(scene_signature(scene))


def describe_signature(signature: SceneSignature) -> str:
    """The full description that states ``signature`` (`parse_description` reads it back)."""
    parts = [f"{_article(c)} {c} {shape} in the {cell}" for c, shape, cell in signature.objects]
    return (
        f"{_join(parts)}; from left to right: {', '.join(signature.left_to_right)}; "
        f"from top to bottom: {', '.join(signature.top_to_bottom)}."
    )


AXES = ("horizontal", "vertical")  # mirror left <-> right, or top <-> bottom
_SWAPS = {"horizontal": {"left": "right", "right": "left"}, "vertical": {"top": "bottom", "bottom": "top"}}


def _mirror_cell(cell: str, axis: str) -> str:
    return " ".join(_SWAPS[axis].get(word, word) for word in cell.split())


def mirror_description(text: str, axis: str = "horizontal") -> str | None:
    """The full description of the scene mirrored left <-> right ("horizontal") or top <-> bottom
    ("vertical"): every cell's column (row) swapped and the left-to-right (top-to-bottom) order
    reversed (objects at the same x keep their colour order in a real mirrored scene; reversed
    here, so those rare ties read differently). None when ``text`` is not a full description."""
    if axis not in AXES:
        raise ValueError(f"axis must be one of {', '.join(AXES)}, got {axis!r}")
    signature = parse_description(text)
    if signature is None:
        return None
    objects = tuple((color, shape, _mirror_cell(cell, axis)) for color, shape, cell in signature.objects)
    if axis == "horizontal":
        return describe_signature(SceneSignature(objects, signature.left_to_right[::-1], signature.top_to_bottom))
    return describe_signature(SceneSignature(objects, signature.left_to_right, signature.top_to_bottom[::-1]))


def stated_objects(text: str) -> dict[str, tuple[str, str]]:
    """What a (possibly partial) description states of each colour: colour -> (shape, cell)."""
    return {color: (shape, cell) for color, shape, cell in _OBJECT.findall(text)}


def stated_orders(text: str) -> dict[str, tuple[str, ...]]:
    """The orders a (possibly partial) description states: "left to right" / "top to bottom" -> colours."""
    return {name: tuple(colors.split(", ")) for name, colors in _ORDER.findall(text)}


def parse_description(text: str) -> SceneSignature | None:
    """Read a full description back; None when it does not state all six objects and both orders."""
    found = {color: (color, shape, cell) for color, (shape, cell) in stated_objects(text).items()}
    orders = stated_orders(text)
    if set(found) != set(COLORS) or set(orders) != {"left to right", "top to bottom"}:
        return None
    if any(shape not in SHAPES for _, shape, _ in found.values()):
        return None
    objects = tuple(found[color] for color in COLORS)
    return SceneSignature(objects, orders["left to right"], orders["top to bottom"])


def _count_phrase(count: int, word: str) -> str:
    return f"{NUMBERS[count]} {word}" + ("" if count == 1 else "s")


def _counts_caption(scene: Scene) -> str:
    squares = sum(o.shape == "square" for o in scene.objects)
    circles = len(scene.objects) - squares
    return f"there are {_count_phrase(squares, 'square')} and {_count_phrase(circles, 'circle')}."


def _relation_caption(a: SceneObject, b: SceneObject) -> str:
    """Where ``a`` is relative to ``b``: "left of and above", "right of", "below", ..."""
    horizontal = "left of" if a.x < b.x else "right of" if a.x > b.x else ""
    vertical = "above" if a.y < b.y else "below" if a.y > b.y else ""
    relation = " and ".join(r for r in (horizontal, vertical) if r)
    return f"the {a.label} is {relation} the {b.label}."


def _position_caption(obj: SceneObject, size: int) -> str:
    return f"the {obj.label} is in the {grid_cell(obj, size)} of the image."


def _neighbour_caption(scene: Scene, obj: SceneObject, closest: bool) -> str:
    other = neighbour(scene, obj, closest)
    word = "closest to" if closest else "furthest from"
    return f"the object {word} the {obj.label} is the {other.label}."


def make_captions(scene: Scene, rng: random.Random) -> list[str]:
    """Five captions; the first is :func:`describe_scene`, the others vary with ``rng``."""
    shuffled = list(scene.objects)
    rng.shuffle(shuffled)
    a, b = shuffled[0], shuffled[1]
    spatial = _relation_caption(a, b) if rng.random() < 0.5 else _position_caption(a, scene.size)
    return [
        describe_scene(scene),
        _join([_named(o) for o in shuffled]) + ".",
        _counts_caption(scene),
        spatial,
        _neighbour_caption(scene, b, closest=rng.random() < 0.5),
    ]
