"""Parameter-efficient fine-tuning with peft: LoRA adapters train alone, save apart from the base,
load back to the same outputs, and merge into base + B A x alpha / r; the CLI reads base + adapter.
The exact comparisons run the same operations in the same order in one process (one thread count)."""

import json

import pytest
import torch

import vlbert
from tests.test_engine import vqa_batch
from tests.test_finetune import NO_DROPOUT, vqa_step
from vlbert.engine.adapters import head_modules, load_adapter, save_adapter
from vlbert.engine.finetune import FinetuneConfig
from vlbert.engine.optim import OptimConfig
from vlbert.engine.trainer import TrainConfig, Trainer

pytest.importorskip("peft")


def lora_run(tmp_path, steps=3):
    """A tiny VQA model saved as the base, then trained with LoRA from it."""
    torch.manual_seed(0)
    vlbert.create_model("tiny", task="vqa", **NO_DROPOUT).save_pretrained(tmp_path / "base")
    model = vlbert.create_model(str(tmp_path / "base"), task="vqa")
    cfg = TrainConfig(max_steps=steps, progress=False, optim=OptimConfig(lr=1e-2, schedule="constant"),
                      finetune=FinetuneConfig(peft="lora", lora_rank=4, lora_alpha=8.0))
    trainer = Trainer(model, vqa_step, cfg, tmp_path / "run", device="cpu")
    batches = [vqa_batch(seed=i) for i in range(3)]
    trainer.fit(lambda epoch, skip: iter(batches[skip:]))
    return model.eval(), trainer


def test_lora_trains_adapters_and_heads_only_and_round_trips(tmp_path):
    base = vlbert.create_model("tiny", task="vqa")
    assert head_modules(base) == ["vqa_head"]
    model, trainer = lora_run(tmp_path)
    trained = {n for n, p in trainer.plan.params.items() if trainer.plan.trains[n]}
    assert trained and all("lora_" in n or n.startswith("vqa_head.modules_to_save.") for n in trained)
    assert any(".c_layer.0.attention.v_qkv.lora_A." in n for n in trained)  # co-attention projections
    assert any(".v_layer.0.attention.self.query.lora_B." in n for n in trained)  # visual self-attention
    reference = vlbert.create_model(str(tmp_path / "base"), task="vqa")
    for name, value in reference.state_dict().items():  # the base weights are untouched
        own = name.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        state = model.state_dict()
        kept = state.get(name, state.get(own, state.get(name.replace("vqa_head.", "vqa_head.original_module."))))
        assert kept is not None and torch.equal(kept, value), name
    inputs = vqa_batch(seed=5).model_inputs()
    with torch.no_grad():
        expected = model(**inputs).logits
    save_adapter(trainer.plan.peft_model, tmp_path / "adapter", task="vqa", base=str(tmp_path / "base"))
    size = (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_size
    assert size < (tmp_path / "base" / "model.safetensors").stat().st_size / 4
    assert json.loads((tmp_path / "adapter" / "vlbert_adapter.json").read_text())["task"] == "vqa"
    import peft

    fresh = vlbert.create_model(str(tmp_path / "base"), task="vqa")
    with torch.no_grad():
        assert not torch.allclose(fresh(**inputs).logits, expected)
        reloaded = peft.PeftModel.from_pretrained(fresh, str(tmp_path / "adapter")).eval()
        assert torch.equal(reloaded(**inputs).logits, expected)  # the same computation: bit-identical


def test_merged_weights_equal_base_plus_scaled_adapter_product(tmp_path):
    model, trainer = lora_run(tmp_path)
    save_adapter(trainer.plan.peft_model, tmp_path / "adapter", task="vqa")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    inputs = vqa_batch(seed=5).model_inputs()
    with torch.no_grad():
        expected = model(**inputs).logits
    merged = load_adapter(vlbert.create_model(str(tmp_path / "base"), task="vqa"), tmp_path / "adapter").eval()
    assert type(merged).__name__ == "VLBertForVQA"
    assert not any("lora_" in n or "base_layer" in n for n in merged.state_dict())
    scaling = 8.0 / 4
    checked = 0
    for name, value in merged.state_dict().items():
        prefix = name[: -len(".weight")] if name.endswith(".weight") else None
        if prefix is not None and f"{prefix}.lora_A.default.weight" in state:
            delta = state[f"{prefix}.lora_B.default.weight"] @ state[f"{prefix}.lora_A.default.weight"] * scaling
            assert torch.equal(value, state[f"{prefix}.base_layer.weight"] + delta), name
            checked += 1
        elif name.startswith("vqa_head."):
            assert torch.equal(value, state[name.replace("vqa_head.", "vqa_head.modules_to_save.default.")]), name
        else:
            own = state.get(name, state.get(name.replace(".bias", ".base_layer.bias")))
            assert torch.equal(value, own), name
    assert checked == 3 * (4 + 2) + 2 * 2  # q, k, v of 4 text and 2 visual layers; v_qkv and t_qkv of 2 blocks
    with torch.no_grad():
        torch.testing.assert_close(merged(**inputs).logits, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_lora_run_saves_an_adapter_that_evaluate_and_predict_read_with_the_base(tmp_path, capsys):
    from tests.test_cli_chain import TINY_REGIONS
    from vlbert.cli import main
    from vlbert.data.sources.sort_of_clevr.shards import make_sample

    shards, pre, out = tmp_path / "shards", tmp_path / "pre", tmp_path / "lora"
    assert main(["make-shards", "sort-of-clevr", "--num-images", "48", "--num-val", "8", "--num-test", "8",
                 "--region-features", "--out", str(shards)]) == 0
    assert main(["pretrain", f"data.root={shards}", f"out_dir={pre}", "train.max_steps=2", *TINY_REGIONS]) == 0
    capsys.readouterr()
    assert main(["finetune", "vqa", f"data.root={shards}", f"out_dir={out}", f"model.init={pre / 'model'}",
                 "train.max_steps=2", "train.finetune.peft=lora", *TINY_REGIONS]) == 0
    assert "trainable parameters: " in capsys.readouterr().err
    for name in ("adapter_config.json", "adapter_model.safetensors", "vlbert_adapter.json", "answers.json",
                 "tokenizer_config.json"):
        assert (out / "adapter" / name).is_file(), name
    assert not any("lora_" in k for k in vlbert.create_model(str(out / "model"), task="vqa").state_dict())
    results = []
    for extra in ([], ["--adapter", str(out / "adapter")]):
        model = out / "model" if not extra else pre / "model"
        assert main(["evaluate", "--model", str(model), *extra, "--task", "vqa", "--data", str(shards),
                     "--split", "test", "--out", str(tmp_path / "r.json")]) == 0
        results.append(json.loads((tmp_path / "r.json").read_text()))
    assert results[0] == results[1]  # merged model/ and base + adapter answer alike
    image = tmp_path / "scene.png"
    image.write_bytes(make_sample(0, split="test").image)
    capsys.readouterr()
    assert main(["predict", "--model", str(pre / "model"), "--adapter", str(out / "adapter"), "--image", str(image),
                 "--question", "what is the shape of the red object?", "--top", "2", "--detector", "sort-of-clevr"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_prompt_tuning_inserts_learned_tokens_after_cls_and_trains_them_with_the_heads(tmp_path):
    torch.manual_seed(0)
    base = vlbert.create_model("tiny", task="captioning", **NO_DROPOUT)
    base.save_pretrained(tmp_path / "base")
    model = vlbert.create_model(str(tmp_path / "base"), task="captioning", num_prompt_tokens=3)
    inputs = vqa_batch().model_inputs()
    text = model.vlbert.encode_text(inputs["input_ids"], inputs["attention_mask"])
    assert text.hidden.shape[1] == inputs["input_ids"].shape[1] + 3 and text.mask[:, 1:4].all()
    assert model(**inputs).logits.shape[:2] == inputs["input_ids"].shape  # per-token logits drop the prompt
    cfg = TrainConfig(max_steps=2, progress=False, optim=OptimConfig(lr=1e-2, schedule="constant"),
                      finetune=FinetuneConfig(peft="prompt", prompt_tokens=3))
    from vlbert.engine.objectives import OBJECTIVES, ObjectiveConfig

    trainer = Trainer(model, lambda m, b: OBJECTIVES["captioning"](m, b, ObjectiveConfig()), cfg, tmp_path / "r",
                      device="cpu")
    words = model.vlbert.embeddings.word_embeddings.weight
    start = model.vlbert.text_prompt.prompt.embedding.weight.clone()
    assert all(any(torch.equal(row, w) for w in words) for row in start)  # sampled from the vocabulary (peft)
    trainer.fit(lambda epoch, skip: iter([vqa_batch(seed=i) for i in range(3)][skip:]))
    trained = {n for n, t in trainer.plan.trains.items() if t}
    assert trained == {"vlbert.text_prompt.prompt.embedding.weight",
                       *(n for n in trained if n.startswith("mlm_head."))}
    assert not torch.equal(model.vlbert.text_prompt.prompt.embedding.weight, start)
    from vlbert.engine.adapters import save_prompt_adapter

    save_prompt_adapter(trainer.plan.trained_state(model), tmp_path / "adapter", 3, task="captioning")
    fresh = vlbert.create_model(str(tmp_path / "base"), task="captioning", num_prompt_tokens=3)
    loaded = load_adapter(fresh, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, model.eval()(**inputs).logits)


@pytest.mark.parametrize("task", ["retrieval", "captioning"])
def test_lora_fits_the_retrieval_and_captioning_models(task, tmp_path):
    from vlbert.engine.finetune import FinetunePlan
    from vlbert.engine.objectives import OBJECTIVES, ObjectiveConfig

    torch.manual_seed(0)
    vlbert.create_model("tiny", task=task).save_pretrained(tmp_path / "base")
    model = vlbert.create_model(str(tmp_path / "base"), task=task)
    plan = FinetunePlan(model, FinetuneConfig(peft="lora", lora_rank=2))
    trained = {n for n, t in plan.trains.items() if t}
    heads = {"retrieval": ("itm_head.modules_to_save.", "itc_head.modules_to_save."),
             "captioning": ("mlm_head.transform.modules_to_save.",)}[task]
    assert trained and all("lora_" in n or n.startswith(heads) for n in trained), sorted(trained)
    assert any(n.startswith(heads) for n in trained)
    batch = vqa_batch()
    OBJECTIVES[task](model, batch, ObjectiveConfig()).total.backward()
    assert all(p.grad is not None for n, p in plan.params.items() if "lora_A" in n and ".c_layer." in n)
    with torch.no_grad():
        for name, param in plan.params.items():
            if plan.trains[name]:
                param.add_(0.01 * torch.randn_like(param))  # as if trained
    save_adapter(plan.peft_model, tmp_path / "adapter", task=task)
    inputs = batch.model_inputs()
    merged = load_adapter(vlbert.create_model(str(tmp_path / "base"), task=task), tmp_path / "adapter").eval()
    model.eval()
    with torch.no_grad():
        ours, theirs = model(**inputs), merged(**inputs)
    key = "itm_logits" if task == "retrieval" else "logits"
    torch.testing.assert_close(getattr(theirs, key), getattr(ours, key), atol=1e-5, rtol=1e-5)


def test_lora_run_resumes_exactly(tmp_path):
    from tests.test_finetune import train_vqa

    finetune = FinetuneConfig(peft="lora", lora_rank=2)
    straight, _ = train_vqa(tmp_path / "a", finetune, steps=5)
    train_vqa(tmp_path / "b", finetune, steps=5, save_every=2)
    (tmp_path / "b" / "checkpoints" / "latest").write_text("step-00000002")  # as if it died after step 2
    resumed, _ = train_vqa(tmp_path / "b", finetune, steps=5, resume=True)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and any("lora_B" in k for k in a)
    for name in a:
        assert torch.equal(a[name], b[name]), name
