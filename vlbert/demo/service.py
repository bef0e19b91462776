"""What the demo page can ask, without the web server: answer a question about an image with the
co-attention heat map, caption it, draw a built-in scene, rank the gallery for a caption.

Each request goes to the first loaded model that has the heads it needs; a request no loaded
model can serve, a picture that does not decode, or a question too long for the model is a
`DemoError` with a one-line message for the page.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from vlbert.data.pipeline.images import decode_image
from vlbert.data.shards.stats import SampleError
from vlbert.data.sources.sort_of_clevr.scenes import (
    COLORS,
    QUESTION_TEMPLATES,
    image_rng,
    render_scene,
    sample_questions,
    sample_scene,
)
from vlbert.demo.gallery import SEARCH_MODES, Gallery, Hit, build_gallery, read_gallery, search
from vlbert.demo.heatmap import Layout, RegionWeight, png_data_url, region_weights, render_heatmap
from vlbert.run.answer_maps import answer_map, check_map_method
from vlbert.run.map_methods import DEFAULT_MAP_METHOD, MAP_METHODS, PIXEL_MAP_METHOD
from vlbert.run.predict import Predictor

MAX_UPLOAD_BYTES = 10 * 2**20
MAX_QUESTION_CHARS = 300
BUILTIN_DETECTOR = "sort-of-clevr"  # how the regions of a built-in scene are found, always said


class DemoError(ValueError):
    """A request the demo refuses, with the message the page shows."""


@dataclass
class Answer:
    answer: str
    score: float  # sigmoid probability of the answer


@dataclass
class AskResult:
    answers: list[Answer]
    layout: Layout  # "regions" (boxes drawn) or "patches" (grid drawn)
    regions: list[RegionWeight]  # each region's or patch's share of the map
    heatmap: str  # PNG data URL: the picture under the heat map
    method: str  # how the map was made (a key of MAP_METHODS)
    method_note: str  # the method in words, for the page


@dataclass
class SceneQuestionItem:
    question: str
    answer: str  # the scene's true answer


@dataclass
class BuiltinScene:
    image: str  # PNG data URL
    seed: int
    questions: list[SceneQuestionItem] = field(default_factory=list)


@dataclass
class DemoInfo:
    models: dict[str, str]  # task -> model directory
    region_model: bool  # whether the VQA/caption models read regions (then a detector is needed)
    gallery_size: int
    templates: list[str]
    map_method: str  # how /api/ask draws its map unless the request names a method


def decode_upload(data: bytes) -> Image.Image:
    """An uploaded file -> RGB image; anything else is a DemoError."""
    if not data:
        raise DemoError("the upload is empty: choose an image file")
    if len(data) > MAX_UPLOAD_BYTES:
        size, limit = len(data) / 2**20, MAX_UPLOAD_BYTES // 2**20
        raise DemoError(f"the upload is {size:.1f} MiB; the demo takes images up to {limit} MiB")
    try:
        return decode_image(data)
    except SampleError as error:
        raise DemoError(f"that file is not an image the demo can read ({error.detail})") from None


def question_templates() -> list[str]:
    """The built-in data's question templates, for every colour."""
    return [template.format(color) for template in QUESTION_TEMPLATES.values() for color in COLORS]


class DemoService:
    def __init__(self, model_dirs: list[str | Path], gallery: str | Path | None = None,
                 gallery_limit: int = 500, detector: str | None = None, device: str | None = None,
                 gallery_split: str | None = None, search_mode: str = "two-stage",
                 map_method: str | None = None) -> None:
        if search_mode not in SEARCH_MODES:
            raise DemoError(f"search mode must be one of {', '.join(SEARCH_MODES)}, got {search_mode!r}")
        self.search_mode = search_mode
        if map_method is not None:
            self._map_method(map_method)
        self.predictors = [Predictor(path, device) for path in model_dirs]
        self.dirs = [str(path) for path in model_dirs]
        # None: removal for a VQA model that reads regions, occlusion for one that reads pixels
        self.map_method = map_method or self._default_map_method()
        self.gallery: Gallery | None = None
        if gallery is not None:
            ranker = self.predictor_for("retrieval")
            self.gallery = build_gallery(ranker, read_gallery(gallery, gallery_limit, gallery_split), detector)

    def predictor_for(self, task: str) -> Predictor:
        for predictor in self.predictors:
            if predictor.supports(task):
                return predictor
        loaded = ", ".join(f"{p.task} ({path})" for p, path in zip(self.predictors, self.dirs))
        raise DemoError(f"no loaded model has a {task} head (loaded: {loaded}); start the demo with a {task} model")

    def info(self) -> DemoInfo:
        regions = any(p.transform is None for p in self.predictors)
        size = len(self.gallery.names) if self.gallery else 0
        models: dict[str, str] = {}
        for predictor, path in zip(self.predictors, self.dirs):
            models.setdefault(predictor.task, path)  # the one that serves that task
        return DemoInfo(models, regions, size, question_templates(), self.map_method)

    def _default_map_method(self) -> str:
        vqa = next((p for p in self.predictors if p.supports("vqa")), None)
        return PIXEL_MAP_METHOD if vqa is not None and vqa.transform is not None else DEFAULT_MAP_METHOD

    @staticmethod
    def _map_method(method: str) -> str:
        try:
            return check_map_method(method)
        except ValueError as error:
            raise DemoError(str(error)) from None

    def scene(self, seed: int | None = None) -> BuiltinScene:
        """A fresh built-in Sort-of-CLEVR scene with its questions and their true answers."""
        seed = random.randrange(2**31) if seed is None else seed
        rng = image_rng(seed, "demo", 0)
        scene = sample_scene(rng)
        questions = {q.question: q.answer for q in sample_questions(scene, rng)}
        image = render_scene(scene)
        return BuiltinScene(png_data_url(image), seed, [SceneQuestionItem(q, a) for q, a in questions.items()])

    def _check_text(self, predictor: Predictor, text: str, what: str) -> str:
        text = text.strip()
        if not text:
            raise DemoError(f"type a {what}")
        if len(text) > MAX_QUESTION_CHARS:
            raise DemoError(f"the {what} is {len(text)} characters long; the demo takes up to {MAX_QUESTION_CHARS}")
        tokens = len(predictor.tokenizer(text)["input_ids"])
        longest = predictor.model.config.max_position_embeddings
        if tokens > longest:
            raise DemoError(f"the {what} is {tokens} tokens long; this model reads at most {longest}")
        return text

    def ask(self, image: Image.Image, question: str, detector: str | None = None, top: int = 5,
            method: str | None = None) -> AskResult:
        """Top answers, and the map of the top answer over the regions (by `method`, default the
        service's), drawn on the picture."""
        method = self._map_method(method or self.map_method)
        predictor = self.predictor_for("vqa")
        question = self._check_text(predictor, question, "question")
        inputs = predictor.image_inputs(image, detector=detector)
        try:
            drawn = answer_map(predictor, inputs, question, method)
        except ValueError as error:  # a method these inputs cannot take (removal on pixels)
            raise DemoError(str(error)) from None
        regions = region_weights(drawn.boxes, drawn.weights)
        layout: Layout = "regions" if predictor.transform is None else "patches"
        answers = [Answer(a, round(s, 4)) for a, s in predictor.top_answers(drawn.probs, top)]
        return AskResult(answers, layout, regions, png_data_url(render_heatmap(image, regions, layout)), method,
                         MAP_METHODS[method])

    def caption(self, image: Image.Image, detector: str | None = None) -> str:
        return self.predictor_for("captioning").caption(image, detector=detector)

    def search(self, caption: str, top: int = 5, k: int = 16) -> list[Hit]:
        ranker = self.predictor_for("retrieval")
        if self.gallery is None:
            raise DemoError("no gallery: start the demo with --gallery DIR (a shard directory or an image folder)")
        return search(ranker, self.gallery, self._check_text(ranker, caption, "caption"), top, k, self.search_mode)
