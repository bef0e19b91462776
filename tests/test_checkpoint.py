"""save_pretrained / from_pretrained round trips, and timm weights from a local file."""

import pytest
import timm
import torch
from safetensors.torch import save_file

import vlbert
from tests.helpers import make_inputs


@pytest.mark.parametrize("task", ["pretraining", "vqa", "retrieval", "captioning"])
def test_save_load_round_trip_gives_identical_outputs(task, tmp_path, tiny_inputs):
    model = vlbert.create_model("tiny", task=task).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    loaded = vlbert.create_model(str(tmp_path), task=task)
    assert type(loaded) is type(model) and not loaded.training
    with torch.no_grad():
        a, b = model(**tiny_inputs.kwargs()), loaded(**tiny_inputs.kwargs())
    for field in ("text_hidden", "visual_hidden", "pooled_text", "pooled_visual"):
        assert torch.equal(getattr(a.backbone, field), getattr(b.backbone, field)), field


def test_pixel_model_round_trip_needs_no_timm_file(tmp_path):
    model = vlbert.create_model("tiny-vit", task="vqa").eval()
    model.save_pretrained(tmp_path)
    loaded = vlbert.create_model(str(tmp_path), task="vqa")
    x = torch.randn(1, 3, 32, 32)
    ids = torch.tensor([[101, 2000, 102]])
    with torch.no_grad():
        assert torch.equal(model(ids, pixel_values=x).logits, loaded(ids, pixel_values=x).logits)


def test_pretrained_backbone_loads_into_a_task_model_with_new_heads(tmp_path, caplog):
    pre = vlbert.create_model("tiny", task="pretraining")
    pre.save_pretrained(tmp_path)
    vqa = vlbert.create_model(str(tmp_path), task="vqa")
    for key, value in pre.vlbert.state_dict().items():
        assert torch.equal(vqa.vlbert.state_dict()[key], value), key
    assert "vqa_head.logit_fc.0.weight" in caplog.text  # reported as newly initialised
    backbone = vlbert.create_model(str(tmp_path))  # heads skipped
    assert isinstance(backbone, vlbert.VLBertModel)


def test_shape_mismatch_is_a_clear_error(tmp_path):
    vlbert.create_model("tiny", task="vqa").save_pretrained(tmp_path)
    config = vlbert.VLBertConfig.from_pretrained(tmp_path)
    config.num_answers = 7
    config.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"vqa_head.logit_fc.3.(weight|bias) has shape"):
        vlbert.create_model(str(tmp_path), task="vqa")


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing is not a model directory \\(no config.json\\)$"):
        vlbert.VLBertModel.from_pretrained(str(tmp_path / "missing"))


def test_timm_weights_from_a_local_file(tmp_path):
    kwargs = dict(patch_size=8, embed_dim=32, depth=2, num_heads=2)
    source = timm.create_model("vit_tiny_patch16_224", num_classes=0, img_size=32, **kwargs)
    weights = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(weights))
    model = vlbert.create_model("tiny-vit", image_pretrained=str(weights))
    ours = model.image_encoder.model.state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(ours[key], value), key
    # a fresh model without the file differs: the weights really came from the file
    other = vlbert.create_model("tiny-vit").image_encoder.model.state_dict()
    assert not torch.equal(other["patch_embed.proj.weight"], source.state_dict()["patch_embed.proj.weight"])


def test_region_model_checks_its_inputs():
    model = vlbert.create_model("tiny")
    bad = make_inputs(feature_size=7)
    with pytest.raises(ValueError, match="region_features must be"):
        model(**bad.kwargs())
    with pytest.raises(ValueError, match="pass region_features"):
        model(input_ids=bad.input_ids)
    with pytest.raises(ValueError, match="pass pixel_values"):
        vlbert.create_model("tiny-vit")(input_ids=bad.input_ids)


class _Code:
    """Unpickling this would call `print`: a global the weights-only unpickler refuses."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_refused_pickle_says_why_in_one_line_without_empty_parentheses(tmp_path, monkeypatch):
    import pickle

    from vlbert.weights.checkpoint import safe_torch_load

    code = tmp_path / "code.pt"
    torch.save({"w": _Code()}, code)
    with pytest.raises(ValueError) as raised:
        safe_torch_load(code)
    assert str(raised.value) == f"{code}: refused: it holds pickled objects beyond tensors and plain data (Unsupported global: GLOBAL print)"
    plain = tmp_path / "plain.pkl"  # a plain pickle, not a torch file: torch puts the reason on its own line
    plain.write_bytes(pickle.dumps({"w": _Code()}))
    with pytest.raises(ValueError, match=r"plain data \(Unsupported operand \d+\)$"):
        safe_torch_load(plain)

    def silent(*args, **kwargs):
        raise pickle.UnpicklingError("Weights only load failed.")  # no reason given

    monkeypatch.setattr(torch, "load", silent)
    with pytest.raises(ValueError) as raised:
        safe_torch_load(code)
    assert str(raised.value) == f"{code}: refused: it holds pickled objects beyond tensors and plain data"


def test_save_pretrained_refuses_arguments_it_does_not_honour(tmp_path):
    model = vlbert.create_model("tiny", task="vqa")
    with pytest.raises(TypeError, match="does not support: max_shard_size, push_to_hub$"):
        model.save_pretrained(tmp_path, max_shard_size="1GB", push_to_hub=True)
    with pytest.raises(ValueError, match="safe_serialization=False"):
        model.save_pretrained(tmp_path, safe_serialization=False)
    assert not any(tmp_path.iterdir())  # refused before writing anything
    zeros = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    model.save_pretrained(tmp_path, state_dict=zeros, safe_serialization=True)  # the given state, not the model's
    assert all(v.count_nonzero() == 0 for v in vlbert.create_model(str(tmp_path), task="vqa").state_dict().values())
