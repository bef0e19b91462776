"""Sort-of-CLEVR: scenes, pixels, answers, captions, determinism and the make-shards command."""

from __future__ import annotations

import io
import itertools
import re

import numpy as np
import pytest
from PIL import Image

from tests.shard_reading import read_manifest, read_samples
from vlbert.cli import main
from vlbert.data.sources.sort_of_clevr.captions import describe_scene, mirror_description, parse_description
from vlbert.data.sources.sort_of_clevr.scenes import (
    ANSWERS,
    COLORS,
    NONRELATIONAL,
    RELATIONAL,
    Scene,
    SceneObject,
    answer_question,
    image_rng,
    reference_answer_index,
    render_scene,
    sample_scene,
)
from vlbert.data.sources.sort_of_clevr.shards import PRETRAIN_SPLIT, make_sample

# Hand-built: red square top left, green circle top, blue square bottom right, orange square
# middle left, gray square in the centre, yellow circle top right.
HAND_BUILT = Scene(
    (
        SceneObject("red", "square", 10, 10),
        SceneObject("green", "circle", 30, 10),
        SceneObject("blue", "square", 60, 60),
        SceneObject("orange", "square", 10, 40),
        SceneObject("gray", "square", 40, 40),
        SceneObject("yellow", "circle", 65, 10),
    )
)


def scene_from_record(record: dict) -> Scene:
    """Rebuild a scene from a sample's ground truth (box centres and labels)."""
    objects = []
    for (x1, y1, x2, y2), label in zip(record["boxes"], record["labels"]):
        color, shape = label.split()
        objects.append(SceneObject(color, shape, (x1 + x2 - 1) // 2, (y1 + y2 - 1) // 2))
    return Scene(tuple(objects), record["width"])


def decode(sample) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(sample.image)).convert("RGB"))


@pytest.mark.parametrize(
    "subtype, color, expected",
    [
        ("closest", "red", "circle"),  # green at distance 20, orange 30, gray 42
        ("furthest", "red", "square"),  # blue at 70.7 beats yellow at 55
        ("closest", "yellow", "circle"),  # green at 35 beats gray at 39
        ("furthest", "orange", "circle"),  # yellow at 62.6 beats blue at 53.9
        ("closest", "blue", "square"),  # gray at 28.3
        ("count", "red", "4"),  # red, blue, orange, gray squares
        ("count", "yellow", "2"),  # green and yellow circles
        ("shape", "green", "circle"),
        ("horizontal", "red", "left"),
        ("horizontal", "gray", "right"),  # x = 40 >= 37.5
        ("vertical", "gray", "bottom"),
        ("vertical", "yellow", "top"),
    ],
)
def test_answers_of_a_hand_built_scene(subtype: str, color: str, expected: str) -> None:
    assert answer_question(HAND_BUILT, subtype, color) == expected


def test_distance_ties_go_to_the_first_colour_like_the_reference() -> None:
    scene = Scene(
        (
            SceneObject("red", "square", 20, 40),  # 20 px left of gray
            SceneObject("green", "circle", 40, 60),  # 20 px below gray: a tie
            SceneObject("blue", "circle", 65, 5),
            SceneObject("orange", "circle", 5, 5),
            SceneObject("gray", "circle", 40, 40),
            SceneObject("yellow", "circle", 5, 65),
        )
    )
    assert answer_question(scene, "closest", "gray") == "square"


def test_reference_answer_classes() -> None:
    # reference vocabulary [yes, no, rectangle, circle, then 0..5 *other* objects of the same shape]
    words = ("left", "top", "right", "bottom", "square", "circle")
    assert [reference_answer_index(a) for a in words] == [0, 0, 1, 1, 2, 3]
    assert reference_answer_index("4") == 7  # 3 other squares -> 3 + 4 in the reference
    assert sorted({reference_answer_index(a) for a in ANSWERS}) == list(range(10))
    with pytest.raises(ValueError):
        reference_answer_index("7")


def test_hand_built_scene_pixels_and_description() -> None:
    pixels = np.asarray(render_scene(HAND_BUILT))
    assert pixels.shape == (75, 75, 3)
    for obj in HAND_BUILT.objects:
        x1, y1, x2, y2 = obj.box
        inside = (pixels[y1:y2, x1:x2] == COLORS[obj.color]).all(-1)
        assert pixels[obj.y, obj.x].tolist() == list(COLORS[obj.color])
        if obj.shape == "square":
            assert inside.sum() == 121
        else:
            assert 0.7 * 121 < inside.sum() < 121 and not inside[0, 0] and inside[5, 0] and inside[0, 5]
    assert (pixels == 255).all(-1).sum() == 75 * 75 - sum((pixels == c).all(-1).sum() for c in COLORS.values())
    assert describe_scene(HAND_BUILT) == (
        "a red square in the top left, a green circle in the top center, a blue square in the bottom right, "
        "an orange square in the middle left, a gray square in the center and a yellow circle in the top right; "
        "from left to right: red, orange, green, gray, blue, yellow; "
        "from top to bottom: red, green, yellow, orange, gray, blue."
    )


def test_same_seed_gives_identical_samples_and_other_seeds_differ() -> None:
    first, again = make_sample(7, seed=3), make_sample(7, seed=3)
    assert first.members() == again.members()
    assert make_sample(7, seed=4).image != first.image
    assert make_sample(8, seed=3).image != first.image
    assert make_sample(7, seed=3, split="test").image != first.image


def test_generated_scenes_objects_boxes_and_pixels() -> None:
    for index in range(150):
        sample = make_sample(index, seed=1)
        record, pixels = sample.record, decode(sample)
        assert (record.width, record.height) == pixels.shape[:2][::-1] == (75, 75)
        assert [label.split()[0] for label in record.labels] == list(COLORS)
        for (x1, y1, x2, y2), label in zip(record.boxes, record.labels):
            color, shape = label.split()
            assert 0 <= x1 < x2 <= 75 and 0 <= y1 < y2 <= 75 and shape in ("square", "circle")
            ys, xs = np.nonzero((pixels == COLORS[color]).all(-1))
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == [x1, y1, x2, y2]
            assert pixels[(y1 + y2) // 2, (x1 + x2) // 2].tolist() == list(COLORS[color])
            assert (pixels[y1, x1].tolist() == list(COLORS[color])) == (shape == "square")
        for a, b in itertools.combinations(record.boxes, 2):
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], "objects overlap"


def test_questions_match_the_ground_truth() -> None:
    subtypes = set()
    for index in range(60):
        record = make_sample(index, seed=2).record
        scene = scene_from_record(record.to_json())
        assert [q.type for q in record.questions] == ["nonrelational"] * 10 + ["relational"] * 10
        for question in record.questions:
            color = re.search(r"the (\w+) object", question.question).group(1)
            assert question.subtype in (NONRELATIONAL if question.type == "nonrelational" else RELATIONAL)
            assert question.answers == [answer_question(scene, question.subtype, color)]
            assert question.answers[0] in ANSWERS
            subtypes.add(question.subtype)
        assert len({q.question_id for q in record.questions}) == 20
    assert subtypes == set(NONRELATIONAL) | set(RELATIONAL)


def test_captions_describe_the_scene() -> None:
    for index in range(40):
        record = make_sample(index).record
        scene = scene_from_record(record.to_json())
        full, listing, counts, spatial, neighbour = record.captions
        assert full == describe_scene(scene)
        assert all(f"{'an' if o.color == 'orange' else 'a'} {o.label}" in listing for o in scene.objects)
        squares = sum(o.shape == "square" for o in scene.objects)
        assert counts.startswith(f"there are {['no', 'one', 'two', 'three', 'four', 'five', 'six'][squares]} square")
        assert spatial.startswith("the ") and neighbour.startswith("the object ")
    assert parse_description(full.replace("; from top to bottom", "; from top")) is None


_ROW = {"top": 0, "middle": 1, "bottom": 2}
_COLUMN = {"left": 0, "center": 1, "right": 2}


def _cell(name: str) -> tuple[int, int]:
    words = name.split()
    return (1, 1) if words == ["center"] else (_ROW[words[0]], _COLUMN[words[1]])


def _facts(record: dict) -> tuple:
    """The facts a full description states, computed from the ground truth, not from the text."""
    colors = list(COLORS)
    objects = [
        (*label.split(), (x1 + x2) // 2, (y1 + y2) // 2)
        for (x1, y1, x2, y2), label in zip(record["boxes"], record["labels"])
    ]
    cells = tuple((c, s, (y * 3 // 75, x * 3 // 75)) for c, s, x, y in objects)
    by_x = tuple(c for c, _, x, _ in sorted(objects, key=lambda o: (o[2], colors.index(o[0]))))
    by_y = tuple(c for c, _, _, y in sorted(objects, key=lambda o: (o[3], colors.index(o[0]))))
    return cells, by_x, by_y


def test_full_description_picks_its_image_out_of_1000() -> None:
    records = [make_sample(index, seed=5).record.to_json() for index in range(1000)]
    descriptions = [r["captions"][0] for r in records]
    assert len(set(descriptions)) == 1000
    scenes_by_facts: dict[tuple, list[int]] = {}
    for index, record in enumerate(records):
        scenes_by_facts.setdefault(_facts(record), []).append(index)
    for index, text in enumerate(descriptions):
        parsed = parse_description(text)
        assert parsed is not None
        cells = tuple((c, s, _cell(cell)) for c, s, cell in parsed.objects)
        facts = (cells, parsed.left_to_right, parsed.top_to_bottom)
        assert scenes_by_facts.get(facts) == [index]


def test_cli_make_shards_sort_of_clevr(tmp_path, capsys) -> None:
    out = tmp_path / "soc"
    assert main(["make-shards", "sort-of-clevr", "--out", str(out), "--num-images", "50", "--shard-size", "20"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 50 samples" in printed and "images/s" in printed
    manifest = read_manifest(out)
    assert [s["count"] for s in manifest["shards"]] == [20, 20, 10]
    assert manifest["total"] == 50 and manifest["splits"] == {"train": 50}
    samples = read_samples(out)
    assert [s["__key__"] for s in samples] == [f"sortofclevr_train_{i:08d}" for i in range(50)]
    assert samples[3]["png"] == make_sample(3).image
    assert main(["make-shards", "sort-of-clevr", "--out", str(out), "--num-images", "5"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--overwrite" in error


def test_cli_writes_a_caption_only_pretraining_corpus_of_other_images(tmp_path) -> None:
    out = tmp_path / "soc"
    argv = ["make-shards", "sort-of-clevr", "--out", str(out), "--num-images", "30", "--num-test", "10",
            "--num-pretrain", "60", "--shard-size", "25", "--region-features"]
    assert main(argv) == 0
    manifest = read_manifest(out)
    assert manifest["splits"] == {"train": 30, "test": 10, PRETRAIN_SPLIT: 60}
    assert manifest["meta"]["caption_only"] == [PRETRAIN_SPLIT]
    by_split: dict[str, list[dict]] = {}
    for sample in read_samples(out):
        record = sample["json"]  # decoded by read_samples
        by_split.setdefault(record["split"], []).append(record)
        assert "npz" in sample  # the corpus has regions too
    corpus = by_split[PRETRAIN_SPLIT]
    assert len(corpus) == 60 and all(not r["questions"] and len(r["captions"]) == 5 for r in corpus)
    assert all(r["questions"] for r in by_split["train"])
    # no image of the corpus is an image of the task splits: not by id, nor by scene
    task = by_split["train"] + by_split["test"]
    assert not {r["image_id"] for r in corpus} & {r["image_id"] for r in task}
    assert not {r["captions"][0] for r in corpus} & {r["captions"][0] for r in task}


def _mirrored(scene: Scene, axis: str = "horizontal") -> Scene:
    if axis == "vertical":
        return Scene(tuple(SceneObject(o.color, o.shape, o.x, scene.size - 1 - o.y) for o in scene.objects), scene.size)
    return Scene(tuple(SceneObject(o.color, o.shape, scene.size - 1 - o.x, o.y) for o in scene.objects), scene.size)


def test_vertically_mirrored_description_is_the_flipped_scenes() -> None:
    exact = 0
    for index in range(200):
        scene = sample_scene(image_rng(0, "test", index))
        flipped = mirror_description(describe_scene(scene), "vertical")
        truth = parse_description(describe_scene(_mirrored(scene, "vertical")))
        got = parse_description(flipped)
        assert got.objects == truth.objects and got.left_to_right == truth.left_to_right
        ties = len({o.y for o in scene.objects}) < len(scene.objects)
        exact += not ties
        assert (got.top_to_bottom == truth.top_to_bottom) or ties
    assert exact > 150
    with pytest.raises(ValueError, match="axis"):
        mirror_description(describe_scene(scene), "diagonal")


def test_mirrored_description_is_the_mirrored_scenes() -> None:
    assert mirror_description("a red circle.") is None  # not a full description
    exact = 0
    for index in range(200):
        scene = sample_scene(image_rng(0, "test", index))
        mirrored = mirror_description(describe_scene(scene))
        assert mirrored is not None and mirrored != describe_scene(scene)
        truth = parse_description(describe_scene(_mirrored(scene)))
        got = parse_description(mirrored)
        assert got.objects == truth.objects and got.top_to_bottom == truth.top_to_bottom
        ties = len({o.x for o in scene.objects}) < len(scene.objects)
        exact += not ties
        assert (got.left_to_right == truth.left_to_right) or ties  # objects at one x: reversed colour order
    assert exact > 150
    # the hand-built scene: red and orange share x = 10 (so their order reads reversed)
    assert mirror_description(describe_scene(HAND_BUILT)) == (
        "a red square in the top right, a green circle in the top center, a blue square in the bottom left, "
        "an orange square in the middle right, a gray square in the center and a yellow circle in the top left; "
        "from left to right: yellow, blue, gray, green, orange, red; "
        "from top to bottom: red, green, yellow, orange, gray, blue."
    )


def test_oracle_region_features_are_the_objects_pixels():
    import numpy as np

    from vlbert.data.shards.schema import RegionFeatures
    from vlbert.data.sources.sort_of_clevr.regions import CLASSES
    from vlbert.data.sources.sort_of_clevr.scenes import COLORS, image_rng, render_scene, sample_scene
    from vlbert.data.sources.sort_of_clevr.shards import make_sample

    sample = make_sample(7, seed=3, regions=True)
    regions = RegionFeatures.from_npz_bytes(sample.members()["npz"])
    scene = sample_scene(image_rng(3, "train", 7))
    assert regions.features.shape == (6, 11 * 11 * 3) and regions.class_probs.shape == (6, len(CLASSES))
    pixels = np.asarray(render_scene(scene), dtype=np.float32) / 255.0
    by_box = {tuple(o.box): o for o in scene.objects}
    for feature, box, probs in zip(regions.features, regions.boxes, regions.class_probs):
        obj = by_box[tuple(int(v) for v in box)]
        x1, y1, x2, y2 = obj.box
        np.testing.assert_allclose(feature.astype(np.float32), pixels[y1:y2, x1:x2].reshape(-1), atol=1e-3)
        assert CLASSES[int(probs.argmax())] == obj.label and probs.sum() == pytest.approx(1.0, abs=1e-5)
        centre = feature.astype(np.float32).reshape(11, 11, 3)[5, 5] * 255
        np.testing.assert_allclose(centre, COLORS[obj.color], atol=1)
    assert make_sample(7, seed=3).features is None  # off by default


def test_detector_recovers_the_oracle_regions():
    import io

    import numpy as np
    from PIL import Image

    from vlbert.data.shards.schema import RegionFeatures
    from vlbert.data.sources.sort_of_clevr.detect import detect_objects
    from vlbert.data.sources.sort_of_clevr.shards import make_sample

    for index in range(20):
        sample = make_sample(index, seed=1, regions=True)
        oracle = RegionFeatures.from_npz_bytes(sample.members()["npz"])
        found = detect_objects(Image.open(io.BytesIO(sample.image)))
        order = lambda r: np.lexsort(r.boxes.T[::-1])  # noqa: E731
        np.testing.assert_array_equal(found.boxes[order(found)], oracle.boxes[order(oracle)])
        np.testing.assert_allclose(found.features[order(found)], oracle.features[order(oracle)].astype(np.float32), atol=1e-3)
        np.testing.assert_array_equal(found.class_probs[order(found)].argmax(1), oracle.class_probs[order(oracle)].argmax(1))


def test_detector_rejects_an_image_without_objects():
    from PIL import Image

    from vlbert.data.shards.schema import DataError
    from vlbert.data.sources.sort_of_clevr.detect import detect_objects

    with pytest.raises(DataError, match="no Sort-of-CLEVR object"):
        detect_objects(Image.new("RGB", (75, 75), "white"))
