"""Answer maps: occlusion (`vlbert.models.occlusion`) against one forward per hidden region by
hand, padding left out; the grounding score (`vlbert.run.grounding`) on hand-made maps over the
regenerated test scenes."""

from __future__ import annotations

import pytest
import torch
from conftest import make_inputs

import vlbert
from vlbert.data.sources.sort_of_clevr.scenes import COLORS, NONRELATIONAL, image_rng, sample_scene
from vlbert.data.sources.sort_of_clevr.shards import make_sample
from vlbert.models.occlusion import occlusion_map
from vlbert.run import grounding
from vlbert.run.answer_maps import AnswerMap
from vlbert.run.grounding import GroundingScore, grounding_score, grounding_scores, object_under, top_region_is


@pytest.fixture
def vqa_model():
    torch.manual_seed(0)
    return vlbert.create_model("tiny", task="vqa").eval()


def test_occlusion_drops_are_the_answer_logit_with_each_region_hidden(vqa_model):
    torch.set_num_threads(1)  # one kernel order: the batched and the one-by-one passes agree closely
    inputs = make_inputs(batch=1, regions=5)
    image = {"region_features": inputs.region_features, "region_boxes": inputs.region_boxes}
    result = occlusion_map(vqa_model, inputs.input_ids, inputs.attention_mask, image)
    with torch.no_grad():
        full = vqa_model(inputs.input_ids, attention_mask=inputs.attention_mask, **image).logits[0]
        answer = int(full.argmax())
        by_hand = []
        for i in range(5):
            hidden = torch.zeros(1, 5, dtype=torch.bool)
            hidden[0, i] = True  # features zeroed, box kept: masked region modelling's masking
            by_hand.append(full[answer] - vqa_model(inputs.input_ids, attention_mask=inputs.attention_mask,
                                                    masked_regions=hidden, **image).logits[0, answer])
    assert result.answer == answer
    torch.testing.assert_close(result.logits, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result.drops, torch.stack(by_hand), atol=1e-5, rtol=1e-5)
    assert result.drops.abs().max() > 1e-4  # hiding a region moves the answer
    support = torch.stack(by_hand).clamp_min(0)
    torch.testing.assert_close(result.weights, support / support.sum(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result.boxes, inputs.region_boxes[0])


def test_occlusion_explains_a_chosen_answer_and_leaves_padding_out(vqa_model):
    inputs = make_inputs(batch=1, regions=5)
    inputs.region_mask[0, 3:] = False  # two padding regions
    image = {"region_features": inputs.region_features, "region_boxes": inputs.region_boxes,
             "region_mask": inputs.region_mask}
    result = occlusion_map(vqa_model, inputs.input_ids, inputs.attention_mask, image, answer=2)
    assert result.answer == 2
    assert result.drops[3:].tolist() == [0.0, 0.0] and result.weights[3:].tolist() == [0.0, 0.0]
    assert result.weights.sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one question at a time"):
        batch = make_inputs(batch=2)
        occlusion_map(vqa_model, batch.input_ids, batch.attention_mask,
                      {"region_features": batch.region_features, "region_boxes": batch.region_boxes})


def test_removal_is_the_answer_without_the_region_as_if_it_were_not_in_the_scene(vqa_model):
    torch.set_num_threads(1)  # one kernel order: the batched and the one-by-one passes agree closely
    inputs = make_inputs(batch=1, regions=5)
    image = {"region_features": inputs.region_features, "region_boxes": inputs.region_boxes}
    result = occlusion_map(vqa_model, inputs.input_ids, inputs.attention_mask, image, hide="remove")
    with torch.no_grad():
        full = vqa_model(inputs.input_ids, attention_mask=inputs.attention_mask, **image).logits[0]
        answer = int(full.argmax())
        by_hand = []
        for i in range(5):
            keep = [j for j in range(5) if j != i]  # the scene with region i taken out of the input
            fewer = {"region_features": inputs.region_features[:, keep], "region_boxes": inputs.region_boxes[:, keep]}
            by_hand.append(full[answer] - vqa_model(inputs.input_ids, attention_mask=inputs.attention_mask,
                                                    **fewer).logits[0, answer])
    torch.testing.assert_close(result.drops, torch.stack(by_hand), atol=1e-5, rtol=1e-5)
    zeroed = occlusion_map(vqa_model, inputs.input_ids, inputs.attention_mask, image, hide="zero")
    assert (result.drops - zeroed.drops).abs().max() > 1e-4  # not the masked-region-modelling hiding
    with pytest.raises(ValueError, match="hide must be"):
        occlusion_map(vqa_model, inputs.input_ids, inputs.attention_mask, image, hide="blur")
    with pytest.raises(ValueError, match="needs region inputs"):
        occlusion_map(vqa_model, inputs.input_ids, inputs.attention_mask,
                      {"pixel_values": torch.zeros(1, 3, 32, 32)}, hide="remove")


def test_object_under_a_box_is_the_one_it_overlaps_most():
    scene = sample_scene(image_rng(0, "test", 0))
    for obj in scene.objects:
        x1, y1, x2, y2 = (v / scene.size for v in obj.box)
        assert object_under(scene, [x1, y1, x2, y2]) == obj.color
        shifted = [x1 + 2 / scene.size, y1, x2 + 2 / scene.size, y2]  # 9 of 11 columns still on it
        assert object_under(scene, shifted) == obj.color
    assert object_under(scene, [0.0, 0.0, 0.0, 0.0]) is None
    boxes = torch.tensor([[v / scene.size for v in o.box] for o in scene.objects])  # [6, 4]
    weights = torch.tensor([0.1, 0.5, 0.1, 0.1, 0.1, 0.1])
    assert top_region_is(scene, scene.objects[1].color, weights, boxes)
    assert not top_region_is(scene, scene.objects[0].color, weights, boxes)


def test_grounding_score_reads_the_test_scenes_and_counts_hits(monkeypatch):
    seed, images = 3, 4
    for index in range(images):  # the scenes it regenerates are the test split's
        scene = sample_scene(image_rng(seed, "test", index))
        record = make_sample(index, seed, "test").record
        assert [o.box for o in scene.objects] == record.boxes
    asked: list[str] = []

    class FakePredictor:  # the detector's regions, in COLORS order
        def image_inputs(self, image, detector=None):
            assert detector == "sort-of-clevr"
            return {"image": image}

    def fake_map(predictor, inputs, question, method):
        """Right on shape questions, on the next colour's object for the others."""
        asked.append(question)
        from vlbert.data.sources.sort_of_clevr.detect import detect_objects

        regions = detect_objects(inputs["image"])
        colors = list(COLORS)
        named = next(c for c in colors if f" {c} " in question)
        target = colors.index(named) if question.startswith("what is the shape") else (colors.index(named) + 1) % 6
        weights = torch.full((6,), 0.1)
        weights[target] = 0.5
        return AnswerMap(torch.zeros(12), weights, torch.from_numpy(regions.boxes) / 75.0, method)

    monkeypatch.setattr(grounding, "answer_map", fake_map)
    score = grounding_score(FakePredictor(), seed, images)
    assert set(score.questions) <= set(NONRELATIONAL) and sum(score.questions.values()) == len(asked) > 4
    assert score.shares()["shape"] == 1.0
    assert all(share == 0.0 for subtype, share in score.shares().items() if subtype != "shape")
    assert score.as_dict()["grounding_shape"] == 1.0
    with pytest.raises(ValueError, match="map method"):
        grounding_score(FakePredictor(), seed, 1, method="saliency")
    # several methods in one pass: each scene's regions found once, every method scored alike
    found = []
    monkeypatch.setattr(FakePredictor, "image_inputs", lambda self, image, detector=None: found.append(1) or {"image": image})
    both = grounding_scores(FakePredictor(), seed, images, methods=("occlusion", "attention"))
    assert len(found) == images
    assert both["occlusion"].shares() == both["attention"].shares() == score.shares()
    assert both["attention"].method == "attention"


def test_grounding_score_shares():
    score = GroundingScore("occlusion")
    score.questions.update({"shape": 4, "vertical": 2})
    score.hits.update({"shape": 3})
    assert score.shares() == {"shape": 0.75, "vertical": 0.0}


def test_the_map_methods_tool_scores_every_method(tmp_path, capsys):
    import importlib.util

    from demo_models import save_tiny_models

    from tests.helpers import ROOT

    spec = importlib.util.spec_from_file_location("answer_map_methods", ROOT / "tools" / "answer_map_methods.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    model = save_tiny_models(tmp_path)["vqa"]
    assert tool.main([str(model), "--seed", "0", "--images", "2"]) == 0
    rows = {line.split(" | ")[0]: line.split(" | ")[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) == {"occlusion", "removal", "attention", "gradient, features", "gradient, embeddings"}
    assert all(0.0 <= float(v) <= 1.0 for values in rows.values() for v in values)
