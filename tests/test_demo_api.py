"""The demo's JSON API through FastAPI's TestClient (no browser): answers and heat maps equal
what `predict` computes, retrieval ranks as `predict --query` does, captions match, and every
refusal is a one-line JSON error after which the server still answers."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from demo_models import save_tiny_models, scene_png
from PIL import Image

pytest.importorskip("fastapi", reason="the demo extra is not installed: pip install -e '.[demo]'")
from fastapi.testclient import TestClient  # noqa: E402

from vlbert.data.sources.sort_of_clevr.detect import detect_objects  # noqa: E402
from vlbert.data.sources.sort_of_clevr.scenes import (  # noqa: E402
    COLORS,
    QUESTION_TEMPLATES,
    answer_question,
    image_rng,
    sample_scene,
)
from vlbert.demo.app import create_app  # noqa: E402
from vlbert.demo.service import MAX_QUESTION_CHARS, DemoService  # noqa: E402
from vlbert.models.occlusion import occlusion_map  # noqa: E402
from vlbert.run import predict as predict_module  # noqa: E402
from vlbert.run.predict import Predictor  # noqa: E402

QUESTION = "what is the shape of the red object?"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demo")
    made = save_tiny_models(root)
    gallery = root / "gallery"
    gallery.mkdir()
    for i in range(5):
        scene_png(gallery / f"scene-{i}.png", i)
    return {**made, "gallery": gallery, "image": scene_png(root / "scene.png", 7)}


@pytest.fixture(scope="module")
def client(models) -> TestClient:
    service = DemoService([models["vqa"], models["retrieval"], models["captioning"]], models["gallery"],
                          detector="sort-of-clevr")
    return TestClient(create_app(service))


def _upload(path: Path, **form: str) -> dict:
    return {"files": {"image": (path.name, path.read_bytes(), "image/png")}, "data": form}


def _png(data_url: str) -> Image.Image:
    assert data_url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def test_page_and_info(client, models):
    page = client.get("/")
    assert page.status_code == 200 and "<title>vlbert demo</title>" in page.text and 'id="heatmap"' in page.text
    info = client.get("/api/info").json()
    assert info["models"] == {t: str(models[t]) for t in ("vqa", "retrieval", "captioning")}
    assert info["region_model"] is True and info["gallery_size"] == 5
    assert len(info["templates"]) == 36 and QUESTION in info["templates"]


def test_a_built_in_scene_comes_with_its_true_answers(client):
    first, again = client.get("/api/scene?seed=11").json(), client.get("/api/scene?seed=11").json()
    assert first == again and first["seed"] == 11 and _png(first["image"]).size == (75, 75)
    scene = sample_scene(image_rng(11, "demo", 0))
    asked = {template.format(color): (subtype, color) for subtype, template in QUESTION_TEMPLATES.items()
             for color in COLORS}
    assert len(first["questions"]) >= 3
    for item in first["questions"]:
        assert item["answer"] == answer_question(scene, *asked[item["question"]])


def test_ask_gives_predicts_answers_and_a_heat_map_over_the_detected_regions(client, models):
    result = client.post("/api/ask", **_upload(models["image"], question=QUESTION, detector="sort-of-clevr")).json()
    expected = Predictor(models["vqa"]).answer(models["image"], QUESTION, top=5, detector="sort-of-clevr")
    assert [(a["answer"], a["score"]) for a in result["answers"]] == [(a, round(s, 4)) for a, s in expected]
    assert result["layout"] == "regions"
    with Image.open(models["image"]) as image:
        boxes = detect_objects(image).boxes / 75.0
    np.testing.assert_allclose([r["box"] for r in result["regions"]], boxes, atol=1e-4)
    assert sum(r["weight"] for r in result["regions"]) == pytest.approx(1.0, abs=1e-4)
    assert _png(result["heatmap"]).size == (300, 300)
    # the map of a model that reads regions is removal's by default, and says so
    predictor = Predictor(models["vqa"])
    ids, mask = predictor.text_inputs(QUESTION)
    with Image.open(models["image"]) as image:
        inputs = predictor.image_inputs(image, detector="sort-of-clevr")
    removed = occlusion_map(predictor.model, ids, mask, inputs, hide="remove")
    np.testing.assert_allclose([r["weight"] for r in result["regions"]], removed.weights.tolist(), atol=1e-4)
    assert result["method"] == "removal" and result["method_note"].startswith("removal:")
    occlusion = client.post("/api/ask", **_upload(models["image"], question=QUESTION, detector="sort-of-clevr",
                                                  method="occlusion")).json()
    zeroed = occlusion_map(predictor.model, ids, mask, inputs, hide="zero")
    np.testing.assert_allclose([r["weight"] for r in occlusion["regions"]], zeroed.weights.tolist(), atol=1e-4)
    assert occlusion["method"] == "occlusion"


def test_ask_draws_the_attention_map_on_request_and_refuses_an_unknown_method(client, models):
    form = dict(question=QUESTION, detector="sort-of-clevr")
    attention = client.post("/api/ask", **_upload(models["image"], **form, method="attention")).json()
    assert attention["method"] == "attention" and "co-attention" in attention["method_note"]
    assert sum(r["weight"] for r in attention["regions"]) == pytest.approx(1.0, abs=1e-4)
    refused = client.post("/api/ask", **_upload(models["image"], **form, method="saliency"))
    assert refused.status_code == 400 and "map method must be one of occlusion, removal, attention" in refused.json()["error"]
    assert client.get("/api/info").json()["map_method"] == "removal"


def test_a_vit_model_gets_its_patch_grid(models):
    client = TestClient(create_app(DemoService([models["vqa-vit"]])))
    result = client.post("/api/ask", **_upload(models["image"], question=QUESTION)).json()
    assert result["layout"] == "patches" and len(result["regions"]) == 16  # 32 px / 8 px patches: 4 x 4
    assert result["method"] == "occlusion"  # a patch cannot be left out of the image: occlusion by default
    refused = client.post("/api/ask", **_upload(models["image"], question=QUESTION, method="removal"))
    assert refused.status_code == 400 and "reads pixels" in refused.json()["error"]
    assert sorted(r["box"][:2] for r in result["regions"])[:2] == [[0.0, 0.0], [0.0, 0.25]]
    assert sum(r["weight"] for r in result["regions"]) == pytest.approx(1.0, abs=1e-4)


def test_caption_and_search_agree_with_predict(client, models, monkeypatch):
    caption = client.post("/api/caption", **_upload(models["image"], detector="sort-of-clevr")).json()["caption"]
    captioner = Predictor(models["captioning"])
    assert caption == captioner.caption(models["image"], detector="sort-of-clevr")
    # decoded to the end token or to the longest text the model reads, not to a short fixed limit:
    # a scene description is about 80 tokens
    limits = []
    real_generate = predict_module.generate
    monkeypatch.setattr(predict_module, "generate",
                        lambda *a, **kw: limits.append(kw["max_length"]) or real_generate(*a, **kw))
    assert client.post("/api/caption", **_upload(models["image"], detector="sort-of-clevr")).json()["caption"] == caption
    assert limits == [captioner.model.config.max_position_embeddings - 2]
    hits = client.post("/api/search", data={"caption": "a red circle", "top": "3"}).json()["hits"]
    ranked = Predictor(models["retrieval"]).rank(models["gallery"], "a red circle", top=3, detector="sort-of-clevr")
    assert [h["name"] for h in hits] == [Path(r.path).name for r in ranked]
    assert [h["score"] for h in hits] == pytest.approx([r.score for r in ranked], abs=1e-4)
    assert all(_png(h["thumbnail"]).size == (150, 150) for h in hits)


@pytest.mark.parametrize("form, message", [
    ({"question": QUESTION, "detector": "sort-of-clevr", "file": b"%PDF-1.4 not an image"}, "not an image"),
    ({"question": "x" * (MAX_QUESTION_CHARS + 1), "detector": "sort-of-clevr"}, "characters long"),
    ({"question": " ".join(["a"] * 140), "detector": "sort-of-clevr"}, "tokens long; this model reads at most 128"),
    ({"question": "   ", "detector": "sort-of-clevr"}, "type a question"),
    ({"question": QUESTION}, "this model reads region features"),
    ({"question": QUESTION, "detector": "yolo"}, "unknown detector 'yolo'"),
    ({"detector": "sort-of-clevr"}, "the request lacks or garbles: question"),
])
def test_refusals_are_one_line_json_errors_and_the_server_keeps_serving(client, models, form, message):
    form = dict(form)
    data = form.pop("file", models["image"].read_bytes())
    response = client.post("/api/ask", files={"image": ("f.png", data, "image/png")}, data=form)
    assert response.status_code == 400 and message in response.json()["error"]
    assert "\n" not in response.json()["error"] and "Traceback" not in response.text
    ok = client.post("/api/ask", **_upload(models["image"], question=QUESTION, detector="sort-of-clevr"))
    assert ok.status_code == 200 and len(ok.json()["answers"]) == 5


def test_a_model_without_the_needed_head_is_said_on_the_page(models):
    client = TestClient(create_app(DemoService([models["vqa"]])))
    caption = client.post("/api/caption", **_upload(models["image"], detector="sort-of-clevr"))
    assert caption.status_code == 400
    assert caption.json()["error"].startswith(f"no loaded model has a captioning head (loaded: vqa ({models['vqa']}))")
    search = client.post("/api/search", data={"caption": "a red circle"})
    assert search.status_code == 400 and "no loaded model has a retrieval head" in search.json()["error"]
    retrieval_only = TestClient(create_app(DemoService([models["retrieval"]])))
    missing = retrieval_only.post("/api/search", data={"caption": "a red circle"})
    no_gallery = "no gallery: start the demo with --gallery DIR (a shard directory or an image folder)"
    assert missing.json() == {"error": no_gallery}


def test_an_unexpected_failure_is_a_json_error_and_the_next_request_is_served(models, monkeypatch):
    service = DemoService([models["vqa"]])
    client = TestClient(create_app(service))
    real = service.ask
    monkeypatch.setattr(service, "ask", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    failed = client.post("/api/ask", **_upload(models["image"], question=QUESTION, detector="sort-of-clevr"))
    assert failed.status_code == 500 and "RuntimeError" in failed.json()["error"] and "boom" not in failed.text
    monkeypatch.setattr(service, "ask", real)
    again = client.post("/api/ask", **_upload(models["image"], question=QUESTION, detector="sort-of-clevr"))
    assert again.status_code == 200


def test_the_command_refuses_a_gallery_it_cannot_serve_in_one_line(models, capsys):
    from vlbert.cli import main

    assert main(["demo", "--model", str(models["vqa"]), "--gallery", str(models["gallery"])]) == 2
    assert capsys.readouterr().err.startswith("vlbert demo: error: no loaded model has a retrieval head")
    assert main(["demo", "--model", str(models["retrieval"]), "--gallery", str(models["gallery"])]) == 2
    assert "this model reads region features" in capsys.readouterr().err  # a folder needs --detector


def test_a_pre_training_model_ranks_the_gallery_with_its_itm_and_itc_heads(models):
    service = DemoService([models["pretraining"]], models["gallery"], detector="sort-of-clevr")
    hits = service.search("a red circle", top=5)
    assert sorted(h.name for h in hits) == [f"scene-{i}.png" for i in range(5)]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_shard_gallery_uses_its_split_and_its_region_features(models, tmp_path):
    from vlbert.data.sources.sort_of_clevr.shards import make_sort_of_clevr_shards, sample_key

    make_sort_of_clevr_shards(tmp_path / "shards", {"train": 4, "test": 3}, regions=True)
    service = DemoService([models["retrieval"]], tmp_path / "shards", gallery_split="test")  # no detector needed
    assert service.gallery.names == [sample_key("test", i) for i in range(3)]
    hits = service.search("a red circle", top=3)
    assert sorted(h.name for h in hits) == service.gallery.names


def test_itc_search_ranks_by_the_contrastive_similarity_alone(models):
    from vlbert.demo.service import DemoError
    from vlbert.eval.retrieval import encode_texts

    service = DemoService([models["pretraining"]], models["gallery"], detector="sort-of-clevr", search_mode="itc")
    hits = service.search("a red circle", top=5)
    ranker = service.predictor_for("retrieval")
    texts = encode_texts(ranker.model, [ranker.text_inputs("a red circle")])
    sims = (texts.embeds @ service.gallery.index.embeds.t())[0]  # [I]
    expected = [service.gallery.names[i] for i in sims.argsort(descending=True)[:5].tolist()]
    assert [h.name for h in hits] == expected
    assert [h.score for h in hits] == [round(float(v), 4) for v in sims.sort(descending=True).values[:5]]
    with pytest.raises(DemoError, match="search mode"):
        DemoService([models["pretraining"]], search_mode="itm")
