"""MLM and region masking statistics and determinism; ITM negatives."""

from __future__ import annotations

import pytest
import torch

from vlbert.data.pipeline.batch import Example
from vlbert.data.pipeline.collate import CollateConfig, Collator
from vlbert.data.pipeline.masking import IGNORE_INDEX, mask_regions, mask_tokens
from vlbert.data.pipeline.negatives import hard_negative_indices, random_negative_indices
from vlbert.data.pipeline.tokenize import TextSpec

VOCAB, MASK, CLS, SEP, PAD = 30522, 103, 101, 102, 0
SPEC = TextSpec(pad_id=PAD, mask_id=MASK, vocab_size=VOCAB, special_ids=(PAD, 100, CLS, SEP, MASK))


def _token_batch(rows: int = 460, length: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """~100k real tokens: [CLS] words [SEP] then padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, VOCAB, (rows, length), generator=g)  # [B, L]
    lengths = torch.randint(length // 2, length + 1, (rows,), generator=g)
    positions = torch.arange(length)[None, :]
    attention = positions < lengths[:, None]  # [B, L]
    ids[:, 0] = CLS
    ids[torch.arange(rows), lengths - 1] = SEP
    ids[~attention] = PAD
    special = torch.isin(ids, torch.tensor(SPEC.special_ids))
    return ids, attention, special


def test_mask_tokens_statistics_follow_bert():
    ids, attention, special = _token_batch()
    masked, labels = mask_tokens(ids, attention, special, VOCAB, MASK, 0.15, torch.Generator().manual_seed(1))
    eligible = attention & ~special
    selected = labels != IGNORE_INDEX
    assert eligible.sum() > 90_000
    rate = (selected.sum() / eligible.sum()).item()
    assert abs(rate - 0.15) < 0.01, rate
    n = selected.sum().item()
    as_mask = (masked[selected] == MASK).sum().item() / n
    unchanged = (masked[selected] == ids[selected]).sum().item() / n
    random = 1.0 - as_mask - unchanged
    assert abs(as_mask - 0.8) < 0.02 and abs(unchanged - 0.1) < 0.02 and abs(random - 0.1) < 0.02, (as_mask, unchanged)
    assert torch.equal(labels[selected], ids[selected])
    # Positions not selected are untouched; special tokens and padding are never selected.
    assert torch.equal(masked[~selected], ids[~selected])
    assert not selected[special | ~attention].any()


def test_focus_words_are_masked_at_their_own_rate(tmp_path):
    ids, attention, special = _token_batch()
    focus = (ids % 10 == 0) & attention & ~special  # a tenth of the tokens
    _, labels = mask_tokens(ids, attention, special, VOCAB, MASK, 0.15, torch.Generator().manual_seed(1),
                            focus, 0.5)
    selected = labels != IGNORE_INDEX
    rest = attention & ~special & ~focus
    assert abs((selected & focus).sum() / focus.sum() - 0.5) < 0.02
    assert abs((selected & rest).sum() / rest.sum() - 0.15) < 0.01
    # the words' token ids, from the tokenizer, reach the collator's masking
    from vlbert.data.pipeline.tokenize import build_wordpiece_tokenizer

    tokenizer = build_wordpiece_tokenizer(["a red circle in the top left"] * 5, 60, tmp_path / "tok")
    spec = TextSpec.from_tokenizer(tokenizer, ["left", "top"])
    assert sorted(spec.focus_ids) == sorted(tokenizer.convert_tokens_to_ids(["left", "top"]))
    config = CollateConfig(mlm_focus_words=("left", "top"), mlm_focus_prob=1.0)  # no other masking
    text = tokenizer("a red circle in the top left")["input_ids"]
    batch = Collator(spec, config)([Example(key="k", image_id="i", input_ids=text, text="")])
    masked = tokenizer.convert_ids_to_tokens(batch.mlm_labels[0][batch.mlm_labels[0] != IGNORE_INDEX].tolist())
    assert masked == ["top", "left"]


def test_mask_tokens_is_seeded_and_pure():
    ids, attention, special = _token_batch(rows=8, length=40)
    before = ids.clone()
    first = mask_tokens(ids, attention, special, VOCAB, MASK, 0.15, 7)
    second = mask_tokens(ids, attention, special, VOCAB, MASK, 0.15, torch.Generator().manual_seed(7))
    other = mask_tokens(ids, attention, special, VOCAB, MASK, 0.15, 8)
    assert torch.equal(ids, before)  # the input is not modified
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[1], other[1])
    state = torch.random.get_rng_state()
    mask_tokens(ids, attention, special, VOCAB, MASK, 0.15, 3)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is not used


def test_mask_regions_statistics_and_subset():
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(10, 37, (3000,), generator=g)
    region_mask = torch.arange(36)[None, :] < counts[:, None]  # [B, 36], ~70k real regions
    zeroed, targets = mask_regions(region_mask, 0.15, 0.9, torch.Generator().manual_seed(2))
    rate = (targets.sum() / region_mask.sum()).item()
    assert abs(rate - 0.15) < 0.01, rate
    zero_rate = (zeroed.sum() / targets.sum()).item()
    assert abs(zero_rate - 0.9) < 0.02, zero_rate
    assert not (zeroed & ~targets).any()  # masked_regions is a subset of mrm_labels
    assert not targets[~region_mask].any()  # padding never masked
    again = mask_regions(region_mask, 0.15, 0.9, 2)
    assert torch.equal(again[0], zeroed) and torch.equal(again[1], targets)


def _examples(count: int = 64) -> list[Example]:
    out = []
    for i in range(count):
        ids = [CLS] + [2000 + i * 7 + j for j in range(3 + i % 5)] + [SEP]
        regions = 2 + i % 3
        out.append(Example(key=f"k{i}", image_id=f"img{i // 2}", input_ids=ids, text=f"text {i}",
                           region_features=torch.randn(regions, 4), region_boxes=torch.rand(regions, 4)))  # fmt: skip
    return out


def test_collator_masks_deterministically_and_keeps_every_pair():
    examples = _examples()
    collate = Collator(SPEC, CollateConfig.pretraining(seed=5))
    first, second = collate(examples), collate(examples)
    for name in ("input_ids", "mlm_labels", "masked_regions", "mrm_labels"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    other_epoch = Collator(SPEC, CollateConfig.pretraining(seed=5, epoch=1))(examples)
    assert not torch.equal(first.mlm_labels, other_epoch.mlm_labels)
    assert not first.mrm_labels[~first.region_mask].any()
    assert torch.equal(first.token_type_ids, torch.zeros_like(first.input_ids))
    # Every row keeps its own text (negatives are the objectives' job), masked tokens aside.
    assert first.texts == [e.text for e in examples] and first.image_ids == [e.image_id for e in examples]
    for row, example in enumerate(examples):
        assert first.attention_mask[row].sum() == len(example.input_ids)
        kept = first.mlm_labels[row] == IGNORE_INDEX
        assert first.input_ids[row][: len(example.input_ids)][kept[: len(example.input_ids)]].tolist() == [
            t for t, k in zip(example.input_ids, kept.tolist()) if k]


def test_random_negatives_never_pick_the_same_image():
    image_ids = [f"img{i // 3}" for i in range(30)]  # three captions per image
    texts = [f"t{i}" for i in range(30)]
    index = random_negative_indices(image_ids, texts, 1.0, torch.Generator().manual_seed(0))
    for i, j in enumerate(index.tolist()):
        assert image_ids[i] != image_ids[j]
    none_valid = random_negative_indices(["a", "a"], ["x", "y"], 1.0, torch.Generator().manual_seed(0))
    assert none_valid.tolist() == [0, 1]  # no other image in the batch: keep the matching text


def test_hard_negatives_pick_the_most_similar_non_matching_text():
    image = torch.eye(4)  # image i points along axis i
    text = torch.tensor([[1.0, 0.05, 0, 0], [0.9, 0.1, 0, 0], [0, 0, 1, 0.1], [0, 0, 0.8, 0.2]])
    # image 0 -> text 1 (0.9), image 1 -> text 0 (0.05), image 2 -> text 3 (0.8), image 3 -> text 2 (0.1).
    picks = hard_negative_indices(text, image)
    assert picks.tolist() == [1, 0, 3, 2]
    # Texts of the same image are not negatives: images 0 and 1 share an id.
    picks = hard_negative_indices(text, image, image_ids=["a", "a", "b", "c"])
    assert picks[0].item() in (2, 3) and picks[1].item() in (2, 3)
    assert hard_negative_indices(text[:1], image[:1]).tolist() == [-1]
    sampled = hard_negative_indices(text, image, sample=True, generator=torch.Generator().manual_seed(0))
    assert all(p != i for i, p in enumerate(sampled.tolist()))


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_mask_probability_extremes(prob):
    ids, attention, special = _token_batch(rows=4, length=20)
    _, labels = mask_tokens(ids, attention, special, VOCAB, MASK, prob, 0)
    assert torch.equal(labels != IGNORE_INDEX, (attention & ~special) if prob else torch.zeros_like(attention))
