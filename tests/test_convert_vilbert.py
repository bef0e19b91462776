"""The converter from original vilbert-multi-task checkpoints."""

import re
import subprocess
import sys

import pytest
import torch

import vlbert
from tests.helpers import random_boxes
from tests.original_reference import original_forward
from vlbert.factory import convert_checkpoint
from vlbert.weights import load_original_state_dict, original_to_vlbert, vlbert_to_original

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


# ---- 12-in-1 task tokens (#14) ----------------------------------------------------------------

NUM_ANSWERS = 7


def _twelve_in_one_state(seed=0):
    """A tiny 12-in-1 checkpoint: the original layout plus `task_embeddings` (20 rows, as the
    original's `nn.Embedding(20, hidden)`), the VQA head `vil_prediction` and heads vlbert drops."""
    original = _random_original_state(seed)
    g = torch.Generator().manual_seed(seed + 100)
    bi, hidden = TINY["bi_hidden_size"], TINY["hidden_size"]
    shapes = {
        "bert.embeddings.task_embeddings.weight": (20, hidden),
        "vil_prediction.logit_fc.0.weight": (2 * bi, bi), "vil_prediction.logit_fc.0.bias": (2 * bi,),
        "vil_prediction.logit_fc.2.weight": (2 * bi,), "vil_prediction.logit_fc.2.bias": (2 * bi,),
        "vil_prediction.logit_fc.3.weight": (NUM_ANSWERS, 2 * bi), "vil_prediction.logit_fc.3.bias": (NUM_ANSWERS,),
        "vil_logit.weight": (1, bi), "vil_logit.bias": (1,),
        "vil_prediction_gqa.logit_fc.3.weight": (5, 2 * bi), "vil_prediction_gqa.logit_fc.3.bias": (5,),
    }
    for key, shape in shapes.items():
        original[key] = torch.randn(shape, generator=g) * 0.2
    for key in original:  # LayerNorm gains near 1, so that the input (and the task token) shows in the output
        if re.search(r"(LayerNorm\d?|logit_fc\.2)\.weight$", key):
            original[key] = original[key] + 1.0
    return original


def _save_twelve_in_one(tmp_path, seed=0):
    import json

    original = _twelve_in_one_state(seed)
    ckpt, config = tmp_path / "multi_task_model.bin", tmp_path / "bert_base_6layer_6conect.json"
    torch.save(original, ckpt)
    # as the released config file: no task_specific_tokens key (the original sets it from a flag)
    config.write_text(json.dumps(dict(TINY, pooling_method="mul", bi_intermediate_size=24, bi_attention_type=1,
                                      v_initializer_range=0.02)))
    return original, ckpt, config


def test_twelve_in_one_vqa_with_task_tokens_matches_the_original(tmp_path):
    from tests.original_reference import original_vqa_logits

    original, ckpt, config = _save_twelve_in_one(tmp_path)
    report = convert_checkpoint(ckpt, tmp_path / "vqa", config_json=config, task="vqa")
    model = vlbert.create_model(str(tmp_path / "vqa"), task="vqa").eval()
    ids, tmask, feats, boxes, rmask = _inputs()
    of, ol, om = _original_visual_inputs(feats, boxes, rmask)
    inputs = dict(attention_mask=tmask, region_features=feats, region_boxes=boxes, region_mask=rmask)
    with torch.no_grad():
        vqa = original_vqa_logits(original, TINY, ids, tmask, of, ol, om, task_ids=torch.tensor([1, 1, 1]))
        mixed = original_vqa_logits(original, TINY, ids, tmask, of, ol, om, task_ids=torch.tensor([1, 8, 15]))
        no_token = original_vqa_logits(original, TINY, ids, tmask, of, ol, om)
        default = model(ids, **inputs).logits  # default_task_id = 1 (VQA, TASK1)
    assert default.shape == (3, NUM_ANSWERS)
    torch.testing.assert_close(default, vqa, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        as_int = model(ids, task_ids=1, **inputs).logits
        per_row = model(ids, task_ids=torch.tensor([1, 8, 15]), **inputs).logits
    assert report.task_specific_tokens and report.default_task_id == 1
    assert "bert.embeddings.task_embeddings.weight" not in report.dropped
    cfg = model.config
    assert (cfg.task_specific_tokens, cfg.num_task_embeddings, cfg.default_task_id) == (True, 20, 1)
    torch.testing.assert_close(model.vlbert.embeddings.task_embeddings.weight,
                               original["bert.embeddings.task_embeddings.weight"])
    torch.testing.assert_close(as_int, vqa, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(per_row, mixed, atol=1e-5, rtol=1e-5)
    # the token matters: without it (the old conversion) or with another task's, the logits move
    assert (no_token - vqa).abs().max() > 0.1
    assert (mixed[1:] - vqa[1:]).abs().max() > 0.1


def test_task_tokens_text_stream_and_pretraining_heads_match_the_original():
    original = _twelve_in_one_state(seed=3)
    report = original_to_vlbert(original)
    model = vlbert.create_model("tiny", task="pretraining", task_specific_tokens=True, **TINY).eval()
    result = model.load_state_dict(report.state_dict, strict=False)
    assert [k for k in result.missing_keys if not k.startswith("itc_head.")] == []
    ids, tmask, feats, boxes, rmask = _inputs()
    of, ol, om = _original_visual_inputs(feats, boxes, rmask)
    task_ids = torch.tensor([4, 12, 0])
    with torch.no_grad():
        mlm, region, align = original_forward(original, TINY, ids, tmask, of, ol, om, task_ids=task_ids)
        out = model(ids, attention_mask=tmask, region_features=feats, region_boxes=boxes, region_mask=rmask,
                    task_ids=task_ids)
    # the text stream carries the task token at index 1 and the original's extended mask
    assert out.backbone.text_hidden.shape[1] == ids.shape[1] + 1
    assert out.backbone.text_mask.tolist() == torch.cat([torch.ones(3, 1, dtype=torch.bool), tmask], 1).tolist()
    assert mlm.shape[1] == ids.shape[1] + 1
    mlm_tokens = torch.cat([mlm[:, :1], mlm[:, 2:]], dim=1)  # the MLM head's logits line up with input_ids
    assert out.mlm_logits.shape[1] == ids.shape[1]
    torch.testing.assert_close(out.mlm_logits[tmask], mlm_tokens[tmask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.region_logits[om], region[om], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.itm_logits, align.flip(-1), atol=1e-5, rtol=1e-5)
    # exported back, the task embedding keeps its original name
    back = vlbert_to_original(model.state_dict(), TINY["v_hidden_size"], TINY["hidden_size"])
    assert torch.equal(back["bert.embeddings.task_embeddings.weight"], original["bert.embeddings.task_embeddings.weight"])


def test_task_ids_are_checked():
    plain = vlbert.create_model("tiny", task="vqa", **TINY).eval()
    tokens = vlbert.create_model("tiny", task="vqa", task_specific_tokens=True, **TINY).eval()
    ids, tmask, feats, boxes, rmask = _inputs()
    inputs = dict(attention_mask=tmask, region_features=feats, region_boxes=boxes, region_mask=rmask)
    with pytest.raises(ValueError, match=r"task_ids given, but this model has no task tokens"):
        plain(ids, task_ids=1, **inputs)
    with pytest.raises(ValueError, match=r"this model has task tokens .* pass task_ids"):
        tokens(ids, **inputs)
    with pytest.raises(ValueError, match=r"task_ids must be in \[0, 20\), got \[1, 20, 3\]"):
        tokens(ids, task_ids=torch.tensor([1, 20, 3]), **inputs)
    with pytest.raises(ValueError, match="task_ids has 2 ids for a batch of 3"):
        tokens(ids, task_ids=torch.tensor([1, 2]), **inputs)
    with pytest.raises(ValueError, match=r"default_task_id must be in \[0, 20\), got 20"):
        vlbert.create_config("tiny", task_specific_tokens=True, default_task_id=20)
    # the option off leaves the text stream as it was: L positions, no task table
    assert not hasattr(plain.vlbert.embeddings, "task_embeddings")
    assert plain(ids, **inputs).backbone.text_hidden.shape[1] == ids.shape[1]


def test_retrieval_conversion_takes_the_task_id_it_is_given(tmp_path):
    _, ckpt, config = _save_twelve_in_one(tmp_path)
    report = convert_checkpoint(ckpt, tmp_path / "ret", config_json=config, task="retrieval")
    assert report.task_specific_tokens and report.default_task_id is None  # COCO (7) or Flickr30k (8)?
    report = convert_checkpoint(ckpt, tmp_path / "ret8", config_json=config, task="retrieval", default_task_id=8)
    assert vlbert.create_model(str(tmp_path / "ret8"), task="retrieval").config.default_task_id == 8


# ---- nothing ignored or dropped without a word (#14) ------------------------------------------


def test_original_config_keys_are_named_when_ignored_and_refused_when_they_change_the_model():
    from vlbert.config import VLBertConfig

    original = dict(TINY, pooling_method="mul", bi_intermediate_size=24, v_initializer_range=0.02, fast_mode=False,
                    fixed_t_layer=2, visual_target=1, task_specific_tokens=True)
    with pytest.warns(UserWarning) as caught:
        config = VLBertConfig.from_original_dict(original)
    message = str(caught[0].message)
    assert message.startswith("original config keys ignored: pooling_method (never read by the original code")
    for key in ("pooling_method", "bi_intermediate_size", "v_initializer_range", "fast_mode", "fixed_t_layer"):
        assert f"{key} (" in message
    assert "fast_mode (False is what vlbert computes)" in message
    assert config.task_specific_tokens is True and config.region_objective == "regression"  # supported keys
    refused = {
        "fast_mode": True, "in_batch_pairs": True, "dynamic_attention": True, "with_coattention": False,
        "model": "roberta", "visual_target": 2, "my_new_flag": 1,
    }
    for key, value in refused.items():
        with pytest.raises(ValueError, match=rf"original config keys vlbert cannot honour: {key}={value!r} \("):
            VLBertConfig.from_original_dict(dict(TINY, **{key: value}))


def test_convert_checkpoint_names_every_dropped_tensor_and_ignored_key(tmp_path):
    original, ckpt, config = _save_twelve_in_one(tmp_path)
    report = convert_checkpoint(ckpt, tmp_path / "pt", config_json=config, task="pretraining")
    # the VQA head has no place in a pre-training model: it is named, not silently left out
    assert report.not_loaded == [f"vqa_head.logit_fc.{n}.{w}" for n in (0, 2, 3) for w in ("bias", "weight")]
    assert sorted(report.dropped) == sorted(
        [k for k in original if "q_dense" in k] + ["vil_logit.bias", "vil_logit.weight",
                                                   "vil_prediction_gqa.logit_fc.3.bias",
                                                   "vil_prediction_gqa.logit_fc.3.weight"])
    assert list(report.ignored_config) == ["pooling_method", "bi_intermediate_size", "bi_attention_type",
                                           "v_initializer_range"]
    report = convert_checkpoint(ckpt, tmp_path / "vqa", config_json=config, task="vqa")
    assert report.not_loaded == sorted(
        ["mlm_head.bias", "mlm_head.decoder.bias", "mlm_head.decoder.weight",
         "itm_head.classifier.weight", "itm_head.classifier.bias"]
        + [f"mlm_head.transform.{m}.{w}" for m in ("dense", "LayerNorm") for w in ("weight", "bias")]
        + [f"region_head.{m}.{w}" for m in ("dense", "LayerNorm", "decoder") for w in ("weight", "bias")])


def test_convert_tool_prints_every_name_and_refuses_keys_that_change_the_model(tmp_path):
    import json

    _, ckpt, config = _save_twelve_in_one(tmp_path)
    cmd = [sys.executable, "tools/convert_vilbert.py", str(ckpt), str(tmp_path / "out"), "--config", str(config),
           "--task", "vqa"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "dropped 12 unused original tensors (q_dense and heads vlbert has no use for):" in lines
    assert "  bert.encoder.c_layer.0.biOutput.q_dense1.weight" in lines and "  vil_logit.weight" in lines
    assert "not in the vqa model, so not written: 15 converted tensors:" in lines
    assert "  mlm_head.bias" in lines and "  region_head.decoder.weight" in lines
    assert "ignored 4 original config keys (they do not change the outputs):" in lines
    assert "  pooling_method: never read by the original code (fusion_method picks the pooling)" in lines
    assert "task tokens on: the checkpoint has 12-in-1's task embedding; forward takes task_ids (default 1)" in lines
    retrieval = cmd[:-1] + ["retrieval", "--task-id", "8"]
    done = subprocess.run(retrieval, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "task tokens on: the checkpoint has 12-in-1's task embedding; forward takes task_ids (default 8)" in \
        done.stdout.splitlines()
    assert vlbert.create_model(str(tmp_path / "out"), task="retrieval").config.default_task_id == 8
    config.write_text(json.dumps(dict(TINY, fast_mode=True)))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("convert_vilbert: original config keys vlbert cannot honour: fast_mode=True (")


# ---- a converted directory that predict and evaluate run on (#30) ------------------------------

LABEL2ANS = ["answer0", "answer1", "answer2", "answer3", "other", "yes", "no"]  # the head's order, NUM_ANSWERS


def _vocab_file(path):
    words = ["question", "about", "what", "is", "the", "0", "1", "?", "s", "##0", "##1", "##2", "##3"]
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    return path


def test_converted_vqa_checkpoint_with_tokenizer_and_label2ans_runs_predict_and_evaluate(tmp_path, capsys):
    """`tools/convert_vilbert.py --tokenizer --answers`, as docs/migrating.md shows it, on a tiny
    12-in-1 checkpoint and a label2ans file pickled as the original's: the directory then holds
    what `vlbert predict` and `vlbert evaluate` read, and both run on it."""
    import pickle

    from tests.shard_factory import good_shards, make_regions, rgb_png
    from vlbert.cli import main
    from vlbert.run.predict import Predictor

    _, ckpt, config = _save_twelve_in_one(tmp_path)
    label2ans = tmp_path / "trainval_label2ans.pkl"
    label2ans.write_bytes(pickle.dumps(LABEL2ANS))
    out = tmp_path / "vilbert-vqa"
    cmd = [sys.executable, "tools/convert_vilbert.py", str(ckpt), str(out), "--config", str(config), "--task", "vqa",
           "--tokenizer", str(_vocab_file(tmp_path / "vocab.txt")), "--answers", str(label2ans)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "wrote answers.json: 7 answers" in lines and any(line.startswith("wrote tokenizer: ") for line in lines)
    assert not any(line.startswith("no tokenizer written") for line in lines)
    assert Predictor(out).parts.answers.answers == LABEL2ANS  # the head's order, as written

    image, features = tmp_path / "scene.png", tmp_path / "scene.npz"
    image.write_bytes(rgb_png(1))
    features.write_bytes(make_regions(5, seed=1).npz())
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "--image", str(image), "--features", str(features),
                 "--question", "what is question 0 about?", "--top", "3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and all(line.split()[1] in LABEL2ANS for line in printed)
    shards = good_shards(tmp_path / "shards")
    assert main(["evaluate", "--model", str(out), "--task", "vqa", "--data", str(shards.directory),
                 "--split", "train"]) == 0
    assert '"vqa_acc"' in capsys.readouterr().out


def test_tokenizer_and_answers_are_checked_against_the_model(tmp_path):
    import pickle

    from vlbert.data.pipeline.answers import read_answer_list
    from vlbert.eval.saved import add_tokenizer_and_answers
    from vlbert.runconfig import ConfigError

    _, ckpt, config = _save_twelve_in_one(tmp_path)
    convert_checkpoint(ckpt, tmp_path / "vqa", config_json=config, task="vqa")
    convert_checkpoint(ckpt, tmp_path / "pt", config_json=config, task="pretraining")
    short = tmp_path / "answers.txt"
    short.write_text("yes\nno\n")
    with pytest.raises(ConfigError, match="has 2 answers; the VQA head of .* has 7 outputs"):
        add_tokenizer_and_answers(tmp_path / "vqa", answers=short)
    with pytest.raises(ConfigError, match="is not a VQA model"):
        add_tokenizer_and_answers(tmp_path / "pt", answers=short)
    big = tmp_path / "big_vocab.txt"
    big.write_text("\n".join(f"w{i}" for i in range(TINY["vocab_size"] + 1)))
    with pytest.raises(ConfigError, match=r"has 10\d\d ids; the model's vocabulary has 1000"):
        add_tokenizer_and_answers(tmp_path / "vqa", tokenizer=big)
    assert not (tmp_path / "vqa" / "answers.json").exists()
    # a pickle that names a function is refused, never called
    evil = tmp_path / "label2ans.pkl"
    evil.write_bytes(pickle.dumps([print]))
    with pytest.raises(pickle.UnpicklingError, match="refused: the file names builtins.print"):
        read_answer_list(evil)
    assert read_answer_list(short).answers == ["yes", "no"]
