"""Is a generated caption of a built-in scene right? BLEU and CIDEr reward the description's
template words whatever the positions, so the caption is read back (`parse_description`) and
compared with the scene's true description, fact by fact."""

from __future__ import annotations

import re
from collections.abc import Mapping

from vlbert.data.sources.sort_of_clevr.captions import parse_description, stated_objects, stated_orders
from vlbert.data.sources.sort_of_clevr.scenes import COLORS

ORDERS = ("left to right", "top to bottom")


def _tidy(text: str) -> str:
    """A decoded caption as the descriptions are written: WordPiece decoding leaves a space before
    punctuation ("right , a green circle")."""
    return re.sub(r"\s+([,;:.?!])", r"\1", text).strip()


def scene_caption_scores(predictions: Mapping[str, str], references: Mapping[str, list[str]],
                         ended: Mapping[str, bool]) -> dict[str, float]:
    """Per image id: the prediction against the first reference (the full description). Returns
    caption_exact (share whose whole scene reads back right), caption_objects (share of all
    objects stated with the right shape and cell), caption_orders (share with both orders right)
    and caption_truncated (share that reached the length limit before the end token); {} when a
    first reference is no full description (not built-in data)."""
    truths = {key: parse_description(refs[0]) if refs else None for key, refs in references.items()}
    if not truths or any(truth is None for truth in truths.values()):
        return {}
    exact = objects = orders = 0
    for key, truth in truths.items():
        text = _tidy(predictions.get(key, ""))
        exact += parse_description(text) == truth
        stated = stated_objects(text)
        objects += sum(stated.get(color) == (shape, cell) for color, shape, cell in truth.objects)
        said = stated_orders(text)
        orders += said.get(ORDERS[0]) == truth.left_to_right and said.get(ORDERS[1]) == truth.top_to_bottom
    n = len(truths)
    return {"caption_exact": exact / n, "caption_objects": objects / (n * len(COLORS)), "caption_orders": orders / n,
            "caption_truncated": sum(not ended.get(key, False) for key in truths) / n}
