"""The converter from original vilbert-multi-task checkpoints."""

import re
import subprocess
import sys

import pytest
import torch

import vlbert
from vlbert.weights import convert_checkpoint, load_original_state_dict, original_to_vlbert, vlbert_to_original
from tests.conftest import random_boxes
from tests.original_reference import original_forward

# Every width differs, so a transposed or swapped tensor cannot go unnoticed.
TINY = dict(
    vocab_size=1000, hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
    max_position_embeddings=64, v_feature_size=48, v_target_size=10, v_hidden_size=40, v_num_hidden_layers=3,
    v_num_attention_heads=2, v_intermediate_size=56, bi_hidden_size=24, bi_num_attention_heads=2,
    t_biattention_id=[2, 3], v_biattention_id=[1, 2],
)
# The parameter names of one original co-attention block (BertConnectionLayer), q_dense included.
ORIGINAL_BLOCK = {
    f"biattention.{n}{s}.{w}" for n in ("query", "key", "value") for s in "12" for w in ("weight", "bias")
} | {
    f"biOutput.{n}.{w}" for n in ("dense1", "dense2", "q_dense1", "q_dense2") for w in ("weight", "bias")
} | {f"biOutput.LayerNorm{s}.{w}" for s in "12" for w in ("weight", "bias")} | {
    f"{n}.{w}" for n in ("v_intermediate.dense", "v_output.dense", "v_output.LayerNorm", "t_intermediate.dense",
                         "t_output.dense", "t_output.LayerNorm") for w in ("weight", "bias")
}


def _random_original_state(seed=0):
    """A tiny model's weights in the original layout, every tensor random (LayerNorms included)."""
    model = vlbert.create_model("tiny", task="pretraining", **TINY)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return vlbert_to_original(model.state_dict(), TINY["v_hidden_size"], TINY["hidden_size"])


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 1000, (3, 9), generator=g)
    tmask = torch.ones(3, 9, dtype=torch.bool)
    tmask[1, 6:] = False
    feats, boxes = torch.randn(3, 6, 48, generator=g), random_boxes(3, 6, g)
    rmask = torch.ones(3, 6, dtype=torch.bool)
    rmask[2, 4:] = False
    return ids, tmask, feats, boxes, rmask


def _original_visual_inputs(feats, boxes, rmask):
    """The original data loader's form: IMG token (mean of real regions, location 0,0,1,1,1) first."""
    w = rmask.float()[..., None]
    mean = (feats * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    locs = torch.cat([boxes, area[..., None]], -1)
    glob = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]).expand(feats.shape[0], 1, 5)
    return torch.cat([mean, feats], 1), torch.cat([glob, locs], 1), torch.cat([torch.ones(3, 1, dtype=torch.bool), rmask], 1)


def test_converted_model_matches_the_original_computation():
    original = _random_original_state()
    report = original_to_vlbert(original)
    assert report.unknown == [] and all("q_dense" in k for k in report.dropped)
    model = vlbert.create_model("tiny", task="pretraining", **TINY).eval()
    result = model.load_state_dict(report.state_dict, strict=False)
    assert [k for k in result.missing_keys if not k.startswith("itc_head.")] == [] and result.unexpected_keys == []
    ids, tmask, feats, boxes, rmask = _inputs()
    of, ol, om = _original_visual_inputs(feats, boxes, rmask)
    with torch.no_grad():
        mlm, region, align = original_forward(original, TINY, ids, tmask, of, ol, om)
        out = model(ids, attention_mask=tmask, region_features=feats, region_boxes=boxes, region_mask=rmask)
    torch.testing.assert_close(out.mlm_logits[tmask], mlm[tmask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.region_logits[om], region[om], atol=1e-5, rtol=1e-5)
    # the original's class 0 = aligned; ours 1 = match: the converter swapped the rows
    torch.testing.assert_close(out.itm_logits, align.flip(-1), atol=1e-5, rtol=1e-5)


def test_round_trip_through_original_key_names():
    original = _random_original_state(seed=1)
    blocks = {m.group(1) for k in original if (m := re.match(r"bert\.encoder\.c_layer\.(\d+)\.(.*)", k))}
    for block in blocks:
        names = {k.split(f"c_layer.{block}.", 1)[1] for k in original if f".c_layer.{block}." in k}
        assert names == ORIGINAL_BLOCK
    converted = original_to_vlbert(original).state_dict
    back = vlbert_to_original(converted, TINY["v_hidden_size"], TINY["hidden_size"])
    assert set(back) == set(original)
    for key, value in original.items():
        if "q_dense" not in key:
            assert torch.equal(back[key], value), key


def test_retrieval_score_maps_onto_the_match_logit():
    original = _random_original_state()
    original["vil_logit.weight"] = torch.randn(1, TINY["bi_hidden_size"])
    original["vil_logit.bias"] = torch.randn(1)
    state = original_to_vlbert(original, task="retrieval").state_dict
    fused = torch.randn(4, TINY["bi_hidden_size"])
    logits = torch.nn.functional.linear(fused, state["itm_head.classifier.weight"], state["itm_head.classifier.bias"])
    expected = torch.nn.functional.linear(fused, original["vil_logit.weight"], original["vil_logit.bias"])
    torch.testing.assert_close(logits[:, 1] - logits[:, 0], expected[:, 0])


def test_old_spellings_and_data_parallel_prefix(tmp_path):
    original = _random_original_state()
    old = {}
    for key, value in original.items():
        key = re.sub(r"LayerNorm(\d?)\.weight$", r"LayerNorm\1.gamma", key)
        old["module." + re.sub(r"LayerNorm(\d?)\.bias$", r"LayerNorm\1.beta", key)] = value
    path = tmp_path / "pytorch_model_9.bin"
    torch.save(old, path)
    assert set(load_original_state_dict(path)) == set(original)


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.bin"
    torch.save({"bert.embeddings.word_embeddings.weight": Evil()}, path)
    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):
        load_original_state_dict(path)


def test_convert_checkpoint_tool_writes_a_loadable_model(tmp_path):
    import json

    original = _random_original_state()
    ckpt, config = tmp_path / "pytorch_model_19.bin", tmp_path / "config.json"
    torch.save(original, ckpt)
    config.write_text(json.dumps(dict(TINY, pooling_method="mul", bi_intermediate_size=24)))
    out = tmp_path / "converted"
    cmd = [sys.executable, "tools/convert_vilbert.py", str(ckpt), str(out), "--config", str(config)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "dropped 8 unused" in done.stdout  # q_dense1/2 weight + bias, 2 blocks
    model = vlbert.create_model(str(out), task="pretraining")
    ids, tmask, feats, boxes, rmask = _inputs()
    of, ol, om = _original_visual_inputs(feats, boxes, rmask)
    with torch.no_grad():
        _, _, align = original_forward(original, TINY, ids, tmask, of, ol, om)
        out_ = model(ids, attention_mask=tmask, region_features=feats, region_boxes=boxes, region_mask=rmask)
    torch.testing.assert_close(out_.itm_logits, align.flip(-1), atol=1e-5, rtol=1e-5)
    # the same checkpoint as a VQA model: the backbone converts, the new head is reported
    convert_checkpoint(ckpt, tmp_path / "as_vqa", config_json=config, task="vqa")
    assert (tmp_path / "as_vqa" / "model.safetensors").is_file()
