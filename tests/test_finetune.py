"""Fine-tuning strategies: freezing by part (bit-identical frozen weights, no autograd below the
trained parts), layer-wise learning rates, gradual unfreezing and its exact resume, config errors."""

import pytest
import torch

import vlbert
from tests.test_engine import vqa_batch
from vlbert.engine.finetune import FinetuneConfig, FinetunePlan
from vlbert.engine.layers import block_depths, parameter_depths, part_of
from vlbert.engine.objectives import OBJECTIVES, ObjectiveConfig
from vlbert.engine.optim import OptimConfig, param_groups
from vlbert.engine.trainer import TrainConfig, Trainer
from vlbert.runconfig import load_run_config

NO_DROPOUT = dict(hidden_dropout_prob=0.0, v_hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                  v_attention_probs_dropout_prob=0.0)


def vqa_step(model, batch):
    return OBJECTIVES["vqa"](model, batch, ObjectiveConfig())


def train_vqa(tmp_path, finetune, steps=4, resume=False, save_every=0, lr=1e-2):
    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="vqa", **NO_DROPOUT)
    batches = [vqa_batch(seed=i) for i in range(3)]
    cfg = TrainConfig(max_steps=steps, save_every=save_every, keep_checkpoints=5, progress=False, finetune=finetune,
                      optim=OptimConfig(lr=lr, schedule="constant"))
    trainer = Trainer(model, vqa_step, cfg, tmp_path, device="cpu")
    if resume:
        assert trainer.resume()
    trainer.fit(lambda epoch, skip: iter(batches[skip:]))
    return model, trainer


def test_tiny_depths_follow_the_documented_order():
    depths = block_depths([2, 3], [0, 1], num_text=4, num_visual=2)
    assert depths.text == [6, 5, 3, 1] and depths.visual == [3, 1] and depths.coattention == [4, 2]
    assert depths.embeddings == 7
    base = block_depths(list(range(6, 12)), list(range(6)), num_text=12, num_visual=6)  # vilbert-base
    # text layer 6+k runs beside visual layer k between blocks k and k+1; the last of each after block 5
    assert base.text == [18, 17, 16, 15, 14, 13, 11, 9, 7, 5, 3, 1]
    assert base.visual == [11, 9, 7, 5, 3, 1] and base.coattention == [12, 10, 8, 6, 4, 2]
    assert base.embeddings == 19


def test_parts_of_parameter_names():
    assert part_of("vlbert.encoder.c_layer.0.attention.v_qkv.lora_A.default.weight") == "coattention"
    assert part_of("vlbert.encoder.layer.3.attention.self.query.weight") == "text_layers"
    assert part_of("vlbert.encoder.v_layer.0.output.dense.bias") == "visual_layers"
    assert part_of("vlbert.t_pooler.dense.weight") == "poolers"
    assert part_of("vqa_head.logit_fc.0.weight") == "heads"
    assert part_of("vlbert.v_embeddings.LayerNorm.weight") == "visual_embeddings"


def test_bad_part_name_is_one_line_error_listing_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown part 'txt' \(valid: image_encoder, text_embeddings") as error:
        load_run_config(None, ["train.finetune.trainable=[heads, txt]"])
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="train.finetune.peft: expected one of none, lora, prompt"):
        load_run_config(None, ["train.finetune.peft=adapters"])
    cfg = load_run_config(None, ["train.finetune.trainable=[coattention, heads]", "train.finetune.layer_decay=0.8"])
    assert cfg.train.finetune.trainable == ["coattention", "heads"] and cfg.train.finetune.layer_decay == 0.8


def test_frozen_parts_stay_bit_identical_and_run_without_autograd(tmp_path):
    finetune = FinetuneConfig(trainable=["coattention", "visual_layers", "poolers", "heads"])
    torch.manual_seed(0)
    before = vlbert.create_model("tiny", task="vqa", **NO_DROPOUT).state_dict()
    before = {k: v.clone() for k, v in before.items()}
    model, trainer = train_vqa(tmp_path, finetune)
    frozen_parts = ("vlbert.embeddings.", "vlbert.v_embeddings.", "vlbert.encoder.layer.")
    for name, value in model.state_dict().items():
        if name.startswith(frozen_parts):
            assert torch.equal(value, before[name]), name
        elif name.startswith(("vlbert.encoder.c_layer.", "vqa_head.")) and name.endswith("weight"):
            assert not torch.equal(value, before[name]), name
    trained = sum(p.numel() for n, p in model.named_parameters()
                  if n.startswith(("vlbert.encoder.c_layer.", "vlbert.encoder.v_layer.", "vlbert.t_pooler.",
                                   "vlbert.v_pooler.", "vqa_head.")))  # fmt: skip
    assert trainer.plan.count.trainable == trained
    assert trainer.plan.count.line().startswith(f"trainable parameters: {trained:,} of ")
    # the frozen text embeddings and the text layers before the first co-attention block run without
    # autograd; the trained visual layers above the frozen visual embeddings record their graph
    seen = {}

    def hook(name):
        return lambda module, args, out: seen.__setitem__(name, torch.is_grad_enabled())

    model.vlbert.embeddings.word_embeddings.register_forward_hook(hook("embeddings"))
    model.vlbert.encoder.layer[1].attention.self.query.register_forward_hook(hook("text_layer_1"))
    model.vlbert.v_embeddings.image_embeddings.register_forward_hook(hook("v_embeddings"))
    model.vlbert.encoder.v_layer[0].attention.self.query.register_forward_hook(hook("visual_layer_0"))
    model.train()
    model(**vqa_batch().model_inputs())
    assert seen == {"embeddings": False, "text_layer_1": False, "v_embeddings": False, "visual_layer_0": True}


def test_layer_decay_assigns_the_documented_learning_rates():
    model = vlbert.create_model("tiny", task="vqa")
    plan = FinetunePlan(model, FinetuneConfig(layer_decay=0.5))
    groups = param_groups(model, OptimConfig(lr=1.0, head_lr=2.0), plan)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    params = dict(model.named_parameters())
    expected = {
        "vqa_head.logit_fc.0.weight": 2.0,  # heads: head_lr x 0.5^0
        "vlbert.t_pooler.dense.weight": 1.0,  # poolers: depth 0
        "vlbert.encoder.layer.3.output.dense.weight": 0.5,  # last text layer: depth 1
        "vlbert.encoder.v_layer.1.output.dense.weight": 0.5,  # last visual layer: depth 1
        "vlbert.encoder.c_layer.1.attention.v_qkv.weight": 0.25,  # co-attention 1: depth 2
        "vlbert.encoder.layer.2.output.dense.weight": 0.125,  # depth 3
        "vlbert.encoder.v_layer.0.output.dense.weight": 0.125,  # depth 3
        "vlbert.encoder.c_layer.0.attention.t_qkv.weight": 0.0625,  # depth 4
        "vlbert.encoder.layer.1.output.dense.weight": 0.5**5,
        "vlbert.encoder.layer.0.output.dense.weight": 0.5**6,
        "vlbert.embeddings.word_embeddings.weight": 0.5**7,
        "vlbert.v_embeddings.image_embeddings.weight": 0.5**7,
    }
    for name, lr in expected.items():
        assert lr_of[id(params[name])] == lr, name
    assert len(lr_of) == len(params)  # every parameter in one group
    assert set(parameter_depths(model).values()) == set(range(8))


def test_gradual_unfreezing_trains_from_the_top_down(tmp_path):
    torch.manual_seed(0)
    start = {k: v.clone() for k, v in vlbert.create_model("tiny", task="vqa", **NO_DROPOUT).state_dict().items()}
    model, trainer = train_vqa(tmp_path, FinetuneConfig(unfreeze_every=2), steps=4)  # depths 0..1 by step 4

    def changed(prefix):
        return any(not torch.equal(v, start[k]) for k, v in model.state_dict().items() if k.startswith(prefix))

    assert changed("vqa_head.") and changed("vlbert.t_pooler.")  # depth 0: from step 0
    assert changed("vlbert.encoder.layer.3.") and changed("vlbert.encoder.v_layer.1.")  # depth 1: from step 2
    for frozen in ("vlbert.encoder.c_layer.", "vlbert.encoder.layer.0.", "vlbert.embeddings."):
        assert not changed(frozen), frozen
    assert trainer.plan.unfrozen_depth(4) == 2 and trainer.plan.unfrozen_depth(100) == 7
    # the optimizer held every group from the start: its groups cover every parameter
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == len(list(model.parameters()))


def test_gradual_unfreezing_resumes_exactly(tmp_path):
    finetune = FinetuneConfig(unfreeze_every=2, layer_decay=0.7)
    straight, straight_trainer = train_vqa(tmp_path / "a", finetune, steps=7)
    train_vqa(tmp_path / "b", finetune, steps=7, save_every=3)  # checkpoints at 3 and 6 (and 7)
    (tmp_path / "b" / "checkpoints" / "latest").write_text("step-00000003")  # as if it died after step 3
    resumed, resumed_trainer = train_vqa(tmp_path / "b", finetune, steps=7, resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(straight_trainer.optimizer.param_groups, resumed_trainer.optimizer.param_groups):
        assert a["lr"] == b["lr"]
        for p, q in zip(a["params"], b["params"]):
            sa, sb = straight_trainer.optimizer.state.get(p, {}), resumed_trainer.optimizer.state.get(q, {})
            assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_cli_says_a_bad_part_name_in_one_line(capsys):
    from vlbert.cli import main

    assert main(["finetune", "vqa", "data.root=/no/such/dir", "train.finetune.trainable=[heads, txt]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown part 'txt' (valid: image_encoder, text_embeddings, prompt" in err
