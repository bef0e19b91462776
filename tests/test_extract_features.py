"""`vlbert extract-features`: a torchvision detector (untrained here, weights from a local file)
over a folder of images, to the `.npz` layout `make-shards folder --features` reads; box
selection; unreadable images reported; a killed run resumed to the same files and shards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import ROOT
from tests.shard_reading import read_samples
from vlbert.cli import main
from vlbert.data.shards.schema import DataError, RegionFeatures
from vlbert.data.sources.converters import WriteOptions, convert_folder
from vlbert.data.sources.extraction.detector import SAVED_FORMAT, load_detector
from vlbert.data.sources.extraction.folder import extract_folder
from vlbert.data.sources.extraction.regions import BoxSelection, RegionExtractor, select_boxes
from vlbert.data.sources.sort_of_clevr.shards import make_sample

torchvision = pytest.importorskip("torchvision")
NAME = "fasterrcnn_mobilenet_v3_large_fpn"
SMALL = dict(num_classes=13, min_size=64, max_size=64, rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=10,
             box_detections_per_img=10, box_score_thresh=0.0)  # fmt: skip


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = torchvision.models.get_model(NAME, weights=None, weights_backbone=None, **SMALL)
    path = tmp_path_factory.mktemp("detector") / "detector.pt"
    torch.save({"format": SAVED_FORMAT, "name": NAME, "kwargs": SMALL, "classes": [], "state_dict": model.state_dict()}, path)
    return path


def write_images(folder: Path, count: int) -> list[Path]:
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    paths = [folder / ("sub" if i % 3 == 0 else "") / f"scene-{i:02d}.png" for i in range(count)]
    for index, path in enumerate(paths):
        path.write_bytes(make_sample(index, split="test").image)
    return paths


def test_a_folder_becomes_the_npz_layout_that_make_shards_reads(weights, tmp_path):
    write_images(tmp_path / "images", 5)
    (tmp_path / "images" / "broken.jpg").write_bytes(b"not an image")
    model, _ = load_detector(f"torchvision:{NAME}", weights)
    extractor = RegionExtractor(model, BoxSelection(max_boxes=4, min_boxes=2, score_threshold=0.99))
    summary = extract_folder(tmp_path / "images", tmp_path / "features", extractor, batch_size=2, progress=False)
    assert (summary.images, summary.written, summary.skipped) == (6, 5, 0)
    assert summary.errors[0][0].endswith("broken.jpg") and "broken.jpg" in (tmp_path / "features" / "errors.tsv").read_text()
    with np.load(tmp_path / "features" / "sub" / "scene-00.npz") as npz:
        regions = RegionFeatures.from_arrays(npz)
    assert regions.image_size == (75, 75) and regions.features.shape == (2, 1024)  # min_boxes, as none scores 0.99
    assert (regions.boxes >= 0).all() and (regions.boxes <= 75).all()
    np.testing.assert_allclose(regions.class_probs.sum(1), 1.0, atol=1e-5)
    assert regions.class_probs.shape == (2, 13)
    again = extract_folder(tmp_path / "images", tmp_path / "features", extractor, batch_size=2, progress=False)
    assert (again.written, again.skipped) == (1, 4)  # the batch with the unreadable image runs again, whole
    out = convert_folder(tmp_path / "images", tmp_path / "shards", options=WriteOptions(features_dir=tmp_path / "features"))
    assert out.total == 5 and out.skipped == {"unreadable image": 1}
    assert all("npz" in sample for sample in read_samples(tmp_path / "shards"))


def test_box_selection_dedups_across_classes_and_bounds_the_count():
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10.5], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]],
                         dtype=torch.float32)  # the first two: one object scored for two classes
    scores = torch.tensor([0.9, 0.8, 0.7, 0.3, 0.1])
    assert select_boxes(boxes, scores, BoxSelection(max_boxes=10, min_boxes=1, score_threshold=0.5)).tolist() == [0, 2]
    assert select_boxes(boxes, scores, BoxSelection(max_boxes=10, min_boxes=3, score_threshold=0.5)).tolist() == [0, 2, 3]
    assert select_boxes(boxes, scores, BoxSelection(max_boxes=2, min_boxes=1, score_threshold=0.0)).tolist() == [0, 2]
    with pytest.raises(DataError, match="min_boxes"):
        BoxSelection(max_boxes=2, min_boxes=3)


def test_a_one_stage_detector_gives_roi_pooled_features(tmp_path):
    torch.manual_seed(0)
    model = torchvision.models.get_model("ssdlite320_mobilenet_v3_large", weights=None, weights_backbone=None,
                                         num_classes=5).eval()  # fmt: skip
    with pytest.raises(DataError, match="roi-pool"):
        RegionExtractor(model, feature="box-head")
    from PIL import Image

    (regions,) = RegionExtractor(model, BoxSelection(max_boxes=3, min_boxes=3), feature="roi-pool")([Image.new("RGB", (40, 30))])
    assert regions.features.shape[0] == 3 and regions.class_probs is None and regions.image_size == (40, 30)


def test_detector_names_and_weights_are_checked(weights, tmp_path):
    with pytest.raises(DataError, match="torchvision:NAME"):
        load_detector(NAME, weights)
    with pytest.raises(DataError, match="not a torchvision detection model"):
        load_detector("torchvision:resnet18", weights)
    with pytest.raises(DataError, match="holds a fasterrcnn_mobilenet_v3_large_fpn"):
        load_detector("torchvision:retinanet_resnet50_fpn", weights)
    state = tmp_path / "plain.pth"
    torch.save(torch.load(weights, weights_only=True)["state_dict"], state)
    with pytest.raises(DataError, match="does not fit .* 7 classes"):
        load_detector(f"torchvision:{NAME}", state, num_classes=7)
    with pytest.raises(DataError, match="not found"):
        load_detector(f"torchvision:{NAME}", tmp_path / "absent.pth")


KILL_AFTER = """
import os, signal, sys
from vlbert.data.sources.extraction import regions
call, count = regions.RegionExtractor.__call__, [0]
def call_then_die(self, images):
    count[0] += 1
    if count[0] == int(os.environ.get("KILL_AT", "0")):
        os.kill(os.getpid(), signal.SIGKILL)
    return call(self, images)
regions.RegionExtractor.__call__ = call_then_die
from vlbert.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_killed_extraction_resumes_to_the_same_files_and_shards(weights, tmp_path):
    write_images(tmp_path / "images", 7)
    argv = ["extract-features", "--images", str(tmp_path / "images"), "--detector", f"torchvision:{NAME}",
            "--weights", str(weights), "--batch-size", "2", "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    def extract(out: str, kill_at: int = 0) -> int:
        command = [sys.executable, "-c", KILL_AFTER, *argv, "--out", str(tmp_path / out)]
        return subprocess.run(command, env={**env, "KILL_AT": str(kill_at)}, capture_output=True, timeout=300).returncode

    assert extract("whole") == 0
    assert extract("resumed", kill_at=3) == -9  # two batches (four images) done
    assert len(list((tmp_path / "resumed").rglob("*.npz"))) == 4
    assert extract("resumed") == 0
    files = {out: {p.relative_to(tmp_path / out): p.read_bytes() for p in (tmp_path / out).rglob("*.npz")}
             for out in ("whole", "resumed")}  # fmt: skip
    assert len(files["whole"]) == 7 and files["resumed"] == files["whole"]
    for out in ("whole", "resumed"):
        assert main(["make-shards", "folder", "--images", str(tmp_path / "images"), "--features", str(tmp_path / out),
                     "--out", str(tmp_path / f"shards-{out}"), "--no-progress"]) == 0  # fmt: skip
    shards = [{p.name: p.read_bytes() for p in (tmp_path / f"shards-{out}").iterdir()} for out in ("whole", "resumed")]
    assert shards[0] == shards[1]
