"""Metrics against hand-computed values; retrieval modes and decoding on a tiny model."""

import pytest
import torch

import vlbert
from tests.helpers import make_inputs
from vlbert.eval.decoding import generate
from vlbert.eval.metrics import accuracy, caption_scores, recall_at_k
from vlbert.eval.retrieval import all_pairs_scores, encode_images, encode_texts, two_stage_scores


def test_recall_at_k_hand_computed():
    # 4 captions, 2 images; captions 0, 1 belong to image 0 and 2, 3 to image 1.
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.5]])
    owner = torch.tensor([0, 0, 1, 1])
    m = recall_at_k(scores, owner)
    assert m.t2i_r1 == pytest.approx(0.5)  # captions 0 and 2 rank their image first
    assert m.t2i_r5 == pytest.approx(1.0)
    # image 0: best caption 0.9 is its own (rank 0); image 1: 0.8 (caption 1, not its own) beats 0.7
    assert m.i2t_r1 == pytest.approx(0.5)
    assert m.i2t_r5 == m.i2t_r10 == pytest.approx(1.0)
    # 12 images, the right one always ranked 7th: R@5 = 0, R@10 = 1
    scores = torch.arange(12.0).repeat(12, 1)
    m = recall_at_k(scores, torch.full((12,), 5))
    assert (m.t2i_r1, m.t2i_r5, m.t2i_r10) == (0.0, 0.0, 1.0)


def test_accuracy_ignores_unlabelled_positions():
    logits = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]])
    labels = torch.tensor([[1, 1, -100]])
    assert accuracy(logits, labels) == pytest.approx(0.5)


def test_caption_scores_known_values():
    refs = {"a": ["a red circle left of a blue square", "the red circle is left of the blue square"],
            "b": ["two green squares at the top", "green squares at the top"]}
    perfect = caption_scores({"a": refs["a"][0], "b": refs["b"][0]}, refs)
    assert perfect["bleu4"] == pytest.approx(1.0, abs=1e-6)
    wrong = caption_scores({"a": "yellow", "b": "yellow"}, refs)
    assert wrong["bleu4"] < 1e-6 and wrong["cider"] == pytest.approx(0.0)
    assert perfect["cider"] > 1.0
    # punctuation and case do not matter
    assert caption_scores({"a": "A red circle, left of a BLUE square.", "b": refs["b"][0]}, refs) == perfect
    with pytest.raises(ValueError, match="differ in ids"):
        caption_scores({"a": "x"}, refs)


def _retrieval_setup(num_images=6, caps_per_image=2, **options):
    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="retrieval", **options).eval()
    imgs = make_inputs(batch=num_images, regions=4, seed=3)
    caps = make_inputs(batch=num_images * caps_per_image, length=7, seed=4)
    caps.attention_mask[::3, 5:] = False
    texts = encode_texts(model, [(caps.input_ids[i : i + 5], caps.attention_mask[i : i + 5]) for i in range(0, len(caps.input_ids), 5)])
    image_batches = [dict(region_features=imgs.region_features[i : i + 4], region_boxes=imgs.region_boxes[i : i + 4])
                     for i in range(0, num_images, 4)]
    images = encode_images(model, image_batches)
    return model, imgs, caps, texts, images


@pytest.mark.parametrize("options", [{}, {"v_geometry_bias": 8}], ids=["original", "geometry-bias"])
def test_cached_states_give_the_same_score_as_a_full_forward(options):
    model, imgs, caps, texts, images = _retrieval_setup(**options)
    scores = all_pairs_scores(model, texts, images, batch_size=7)
    assert scores.shape == (12, 6)
    t, i = 5, 2
    with torch.no_grad():
        out = model(caps.input_ids[t : t + 1], attention_mask=caps.attention_mask[t : t + 1],
                    region_features=imgs.region_features[i : i + 1], region_boxes=imgs.region_boxes[i : i + 1])
    expected = out.itm_logits[0, 1] - out.itm_logits[0, 0]
    torch.testing.assert_close(scores[t, i], expected, atol=1e-5, rtol=1e-5)


def test_two_stage_equals_all_pairs_on_the_pairs_it_reranks():
    model, imgs, caps, texts, images = _retrieval_setup()
    full = all_pairs_scores(model, texts, images)
    fast = two_stage_scores(model, texts, images, k=2)
    sims = texts.embeds @ images.embeds.t()
    chosen = torch.zeros_like(sims, dtype=torch.bool)
    chosen.scatter_(1, sims.topk(2, dim=1).indices, True)
    chosen.scatter_(0, sims.topk(2, dim=0).indices, True)
    torch.testing.assert_close(fast[chosen], full[chosen], atol=1e-5, rtol=1e-5)
    assert fast[~chosen].max() < fast[chosen].min()
    # with k = all, two-stage is exactly all-pairs
    torch.testing.assert_close(two_stage_scores(model, texts, images, k=12), full, atol=1e-5, rtol=1e-5)


def test_greedy_decoding_follows_the_argmax_and_beams_score_at_least_as_well():
    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="captioning").eval()
    imgs = make_inputs(batch=2, regions=4, seed=5)
    inputs = dict(region_features=imgs.region_features, region_boxes=imgs.region_boxes)
    greedy = generate(model, inputs, bos_id=101, eos_id=102, max_length=5)
    assert len(greedy) == 2 and all(len(g) <= 5 for g in greedy)
    # replay the greedy caption of image 0 with a full forward: each token is the argmax
    for row, caption in enumerate(greedy):
        ids = torch.tensor([[101] + caption])
        with torch.no_grad():
            logits = model(ids, region_features=imgs.region_features[row : row + 1],
                           region_boxes=imgs.region_boxes[row : row + 1]).logits
        argmax = logits[0].argmax(-1).tolist()
        assert argmax[: len(caption)] == caption
        if len(caption) < 5:
            assert argmax[len(caption)] == 102  # stopped at EOS

    def score(seq, row):
        """What beam search maximises: the caption's log-probability, with that of the EOS that
        ended it early (a caption of max_length tokens has none)."""
        tokens = seq + [102] if len(seq) < 5 else seq
        ids = torch.tensor([[101] + tokens])
        with torch.no_grad():
            lp = model(ids, region_features=imgs.region_features[row : row + 1],
                       region_boxes=imgs.region_boxes[row : row + 1]).logits.log_softmax(-1)
        return sum(lp[0, i, tok].item() for i, tok in enumerate(tokens))

    beam = generate(model, inputs, bos_id=101, eos_id=102, max_length=5, num_beams=4)
    assert beam != greedy  # the beams found other captions here, so the comparison below says something
    # (beam search is not bound to beat greedy in general; on these fixed inputs it does, by its own score)
    for row in range(2):
        assert score(beam[row], row) >= score(greedy[row], row) - 1e-4


def test_vqa_accuracy_per_type_and_subtype():
    from vlbert.data.pipeline.answers import AnswerVocab
    from vlbert.data.pipeline.batch import Batch
    from vlbert.eval.vqa import evaluate_vqa

    class Fixed(torch.nn.Module):
        """Answers "left" to every question."""

        def __init__(self) -> None:
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, **_):
            return type("Out", (), {"logits": torch.tensor([[0.0, 1.0, 0.0]]).expand(len(input_ids), 3)})

    batch = Batch(input_ids=torch.zeros(4, 3, dtype=torch.long), attention_mask=torch.ones(4, 3, dtype=torch.bool),
                  answers=[["left"], ["right"], ["left"], ["2"]],
                  question_types=["nonrelational"] * 3 + ["relational"],
                  question_subtypes=["horizontal", "horizontal", "horizontal", "count"])
    metrics = evaluate_vqa(Fixed(), [batch], AnswerVocab(["square", "left", "right"]))
    assert metrics == pytest.approx({"vqa_acc": 0.5, "vqa_acc_nonrelational": 2 / 3, "vqa_acc_relational": 0.0,
                                     "vqa_acc_subtype_horizontal": 2 / 3, "vqa_acc_subtype_count": 0.0})


def test_itc_mode_ranks_by_the_contrastive_similarity_alone():
    from vlbert.eval.gallery import Gallery, gallery_scores

    model, imgs, caps, texts, images = _retrieval_setup()
    gallery = Gallery(texts=[(caps.input_ids, caps.attention_mask)],
                      images=[dict(region_features=imgs.region_features, region_boxes=imgs.region_boxes)],
                      owner=torch.arange(12) // 2, references=[], image_ids=[], text_positions=[], image_positions=[])
    scores = gallery_scores(model, gallery, "itc")
    torch.testing.assert_close(scores, texts.embeds @ images.embeds.t())  # [12 captions, 6 images]
    assert not torch.allclose(scores, gallery_scores(model, gallery, "all-pairs"))  # no ITM pass in it


def test_sharded_two_stage_ranking_keeps_the_boxes_a_geometry_bias_reads():
    """The gallery gathered for (sharded) ranking carries each image's boxes: a model whose visual
    attention reads them (v_geometry_bias) re-ranks with ITM, and scores as all-pairs does there."""
    from vlbert.eval.gallery import Gallery, shard_gallery
    from vlbert.eval.sharded import gather_images, sharded_recall

    model, imgs, caps, texts, images = _retrieval_setup(v_geometry_bias=8)
    whole = gather_images(images, torch.arange(6))
    torch.testing.assert_close(whole.states.locations, images.states.locations)
    gallery = Gallery(texts=[(caps.input_ids, caps.attention_mask)],
                      images=[dict(region_features=imgs.region_features, region_boxes=imgs.region_boxes)],
                      owner=torch.arange(12) // 2, references=[], image_ids=[str(i) for i in range(6)], text_positions=list(range(12)),
                      image_positions=list(range(0, 12, 2)))
    sharded, image_index = shard_gallery(model, gallery, None)
    ranked = sharded_recall(model, sharded, "two-stage", 6, image_index)  # k = every image: all-pairs
    expected = recall_at_k(all_pairs_scores(model, texts, images), torch.arange(12) // 2)
    assert ranked.as_dict() == pytest.approx(expected.as_dict())


def test_mirror_check_scores_true_against_mirrored_descriptions(tmp_path):
    """The ITM margin of each image's description over its mirror image, by hand for one row;
    a text that is no full description is left out."""
    from vlbert.data.pipeline.batch import Batch
    from vlbert.data.pipeline.tokenize import TextEncoder, build_wordpiece_tokenizer
    from vlbert.data.sources.sort_of_clevr.captions import describe_scene, mirror_description
    from vlbert.data.sources.sort_of_clevr.scenes import image_rng, sample_scene
    from vlbert.eval.mirror import mirror_check

    texts = [describe_scene(sample_scene(image_rng(0, "test", i))) for i in range(3)] + ["a red circle."]
    tokenizer = build_wordpiece_tokenizer(texts + [mirror_description(t) or t for t in texts], 120, tmp_path / "tok")
    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="pretraining", vocab_size=len(tokenizer), v_feature_size=48,
                                v_geometry_bias=8).eval()
    imgs = make_inputs(batch=4, feature_size=48, seed=1)
    batch = Batch(input_ids=imgs.input_ids, attention_mask=imgs.attention_mask, region_features=imgs.region_features,
                  region_boxes=imgs.region_boxes, region_mask=imgs.region_mask, texts=texts)
    check = mirror_check(model, [batch], tokenizer, max_length=96)
    assert check.images == 3  # the short caption has no mirror
    encoder = TextEncoder(tokenizer, 96)
    with torch.no_grad():
        image = model.vlbert.encode_image(imgs.region_features[:1], imgs.region_boxes[:1], imgs.region_mask[:1])
        odds = []
        for text in (texts[0], mirror_description(texts[0])):
            ids = torch.tensor([encoder(text).ids])
            logits = model.match_logits(model.vlbert.encode_text(ids, torch.ones_like(ids, dtype=torch.bool)), image)
            odds.append((logits[0, 1] - logits[0, 0]).item())
    first = mirror_check(model, [batch], tokenizer, max_length=96, limit=1)
    assert first.images == 1 and first.margin == pytest.approx(odds[0] - odds[1], abs=1e-5)
    assert first.preferred == float(odds[0] > odds[1]) and 0.0 <= check.preferred <= 1.0
    with torch.no_grad():  # top <-> bottom: the same margin against the vertically mirrored text
        ids = torch.tensor([encoder(mirror_description(texts[0], "vertical")).ids])
        logits = model.match_logits(model.vlbert.encode_text(ids, torch.ones_like(ids, dtype=torch.bool)), image)
    vertical = mirror_check(model, [batch], tokenizer, max_length=96, limit=1, axis="vertical")
    assert vertical.margin == pytest.approx(odds[0] - (logits[0, 1] - logits[0, 0]).item(), abs=1e-5)
    from vlbert.eval.mirror import mirror_checks

    both = mirror_checks(model, [batch], tokenizer, max_length=96)  # one pass: the same as an axis at a time
    for axis, alone in (("horizontal", check), ("vertical", mirror_check(model, [batch], tokenizer, 96, axis="vertical"))):
        assert both[axis].images == alone.images and both[axis].margin == pytest.approx(alone.margin, abs=1e-5)


def test_scene_caption_scores_on_hand_made_captions():
    from vlbert.data.sources.sort_of_clevr.captions import describe_scene, mirror_description
    from vlbert.data.sources.sort_of_clevr.scenes import image_rng, sample_scene
    from vlbert.eval.decoding import ended
    from vlbert.eval.scene_captions import scene_caption_scores

    truths = [describe_scene(sample_scene(image_rng(0, "test", i))) for i in range(4)]
    refs = {str(i): [t, "there are two squares."] for i, t in enumerate(truths)}
    cut = truths[1][: truths[1].index(", a green") + 1]  # states the red object only, then stops
    mirrored = mirror_description(truths[2])
    spaced = truths[0].replace(",", " ,").replace(";", " ;").replace(":", " :").replace(".", " .")  # as decoded
    predictions = {"0": spaced, "1": cut, "2": mirrored, "3": ""}
    finished = {"0": True, "1": False, "2": True, "3": True}
    scores = scene_caption_scores(predictions, refs, finished)
    assert scores["caption_exact"] == 0.25  # the first only
    assert scores["caption_truncated"] == 0.25  # the second
    # objects: 6 + 1 + (those whose mirrored cell is their own: the centre column) + 0, of 24
    from vlbert.data.sources.sort_of_clevr.captions import stated_objects

    same = sum(stated_objects(mirrored)[c] == cell for c, cell in stated_objects(truths[2]).items())
    assert same < 6
    assert scores["caption_objects"] == (6 + 1 + same) / 24
    assert scores["caption_orders"] == 0.25  # the mirrored caption reverses left to right
    assert scene_caption_scores({"a": "a cat"}, {"a": ["a cat on a mat"]}, {"a": True}) == {}  # not built-in data
    assert ended([5, 6], max_length=3) and not ended([5, 6, 7], max_length=3)
