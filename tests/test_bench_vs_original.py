"""tools/bench_vs_original.py hands the original model its own input conventions, through a
stand-in checkout whose model checks them (the real original cannot be installed offline)."""

import json
import sys

import pytest
import torch

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import bench_vs_original as tool  # noqa: E402

FAKE_MODEL = '''
import json
import torch
from torch import nn
from .utils import PreTrainedModel


class BertConfig:
    @classmethod
    def from_json_file(cls, path):
        config = cls()
        config.__dict__.update(json.load(open(path)))
        return config


class BertForMultiModalPreTraining(PreTrainedModel):
    calls = []

    def __init__(self, config):
        super().__init__(config)
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, input_ids, image_feat, image_loc, token_type_ids=None, attention_mask=None,
                image_attention_mask=None, masked_lm_labels=None, image_label=None, image_target=None,
                next_sentence_label=None):
        type(self).calls.append(dict(ids=input_ids, feat=image_feat, loc=image_loc, lm=masked_lm_labels,
                                     label=image_label, target=image_target, mask=image_attention_mask))
        loss = self.weight * image_feat.mean()
        return loss, loss, loss
'''


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    (tmp_path / "vilbert").mkdir()
    (tmp_path / "vilbert" / "vilbert.py").write_text(FAKE_MODEL)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "bert_base_6layer_6conect.json").write_text(json.dumps({"v_target_size": 1601}))
    names = ("vilbert", "vilbert.utils", "vilbert.vilbert")
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield tmp_path
    for name in names:  # the stand-in package is this test's alone
        sys.modules.pop(name, None)


def test_the_original_gets_its_own_input_conventions(checkout):
    from vlbert.bench.train_step import make_inputs

    original = tool.load_original(checkout)
    inputs = make_inputs("vilbert-base", 8, 36, 36, torch.device("cpu"), seed=0)
    model, step = tool.original_step(original, checkout, inputs)
    step()
    (call,) = type(model).calls
    assert model.config.v_target_size == 1601  # the checkout's own configuration file
    assert call["feat"].shape == (8, 37, 2048) and call["loc"].shape == (8, 37, 5)  # IMG token first
    assert torch.equal(call["feat"][:, 1:], inputs.features) and torch.equal(call["loc"][:, 0, :4], torch.tensor([0.0, 0, 1, 1]).expand(8, 4))
    area = (inputs.boxes[..., 2] - inputs.boxes[..., 0]) * (inputs.boxes[..., 3] - inputs.boxes[..., 1])
    assert torch.allclose(call["loc"][:, 1:, 4], area)
    assert call["label"].shape == (8, 36) and call["target"].shape == (8, 36, 1601)  # regions without IMG
    assert (call["lm"] != -100).all() and torch.equal(call["lm"] == -1, inputs.mlm_labels == -100)
    assert call["mask"].shape == (8, 37)
    assert model.weight.grad is None  # the step stepped and zeroed its optimizer


def test_a_folder_that_is_not_a_checkout_is_named(tmp_path):
    with pytest.raises(SystemExit, match=f"--original: {tmp_path} is not a vilbert-multi-task checkout"):
        tool.load_original(tmp_path)
