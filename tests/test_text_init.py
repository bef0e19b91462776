"""The text stream initialised from a real BERT checkpoint (MiniLM-L6-H384-uncased, offline)."""

import pytest
import torch
from transformers import BertModel, BertTokenizerFast

import vlbert
from tests.helpers import random_boxes

SENTENCES = ["a red circle left of a blue square.", "how many objects have the same shape as the gray one?"]


def _minilm_model(path, task="pretraining"):
    # MiniLM has 6 layers: co-attention at text layers 3..5, so layers 0-2 run alone first.
    return vlbert.create_model(
        "tiny", task=task, text_pretrained=path, t_biattention_id=[3, 4, 5], v_biattention_id=[0, 1, 2],
        v_num_hidden_layers=3,
    ).eval()


def test_text_layers_before_coattention_match_transformers_bert(minilm_path):
    model = _minilm_model(minilm_path, task="backbone")
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    tokenizer = BertTokenizerFast.from_pretrained(minilm_path)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    reference = BertModel.from_pretrained(minilm_path, attn_implementation="eager").eval()
    with torch.no_grad():
        expected = reference(**batch, output_hidden_states=True).hidden_states[3]  # after layer 2
        text = model.encode_text(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    real = batch["attention_mask"].bool()
    diff = (text.hidden - expected)[real].abs().max().item()
    assert diff < 1e-5, diff


def test_text_init_reports_and_copies_every_text_weight(minilm_path):
    from vlbert.weights import load_text_stream

    model = _minilm_model(minilm_path)
    reference = BertModel.from_pretrained(minilm_path)
    ours = model.vlbert.state_dict()
    for key, value in reference.state_dict().items():
        if key.startswith(("embeddings.", "encoder.layer.")) and key in ours:
            assert torch.equal(ours[key], value), key
    report = load_text_stream(model, minilm_path)
    assert report.missing == []
    assert any(k.startswith("bert.pooler.") for k in report.unexpected)  # BERT's tanh pooler is not ViLBERT's
    assert len([k for k in report.loaded if ".encoder.layer." in k]) == 6 * 16


def test_text_pretrained_model_runs_with_regions(minilm_path):
    model = _minilm_model(minilm_path)
    g = torch.Generator().manual_seed(0)
    out = model(
        input_ids=torch.tensor([[101, 2417, 4418, 102]]),
        region_features=torch.randn(1, 3, model.config.v_feature_size, generator=g),
        region_boxes=random_boxes(1, 3, g),
    )
    assert out.mlm_logits.shape == (1, 4, 30522)
    assert torch.isfinite(out.itm_logits).all()


def test_text_pretrained_rejects_a_missing_path(tmp_path):
    with pytest.raises(OSError):
        vlbert.create_model("tiny", text_pretrained=str(tmp_path / "nope"))
