"""Evaluation shared out over two gloo processes gives the metrics of one process, exactly
(tests/eval_worker.py: VQA, retrieval in each mode, captioning, with and without eval.limit)."""

import json

import pytest
from eval_worker import SETTINGS
from test_distributed import _run

from vlbert.data.pipeline.loader import DataConfig, make_dataset
from vlbert.data.pipeline.tokenize import load_tokenizer
from vlbert.data.sources.sort_of_clevr.shards import make_sort_of_clevr_shards


def test_record_shards_split_the_stream_by_record_and_keep_positions(tmp_path, minilm_path):
    """Records r, r + n, ... go to share r with all their questions; positions are those of the
    whole stream, so the shares put together are the whole split in order."""
    shards = tmp_path / "shards"
    make_sort_of_clevr_shards(shards, {"val": 5}, shard_size=2, questions_per_type=1)
    tokenizer = load_tokenizer(minilm_path)

    def examples(share: tuple[int, int]) -> list[tuple[int, str]]:
        config = DataConfig(inputs="pixels", split="val", shuffle_buffer=0, record_shard=share)
        return [(e.position, e.image_id) for e in make_dataset(shards, "questions", tokenizer, config)]

    whole, first, second = examples((0, 1)), examples((0, 2)), examples((1, 2))
    assert sorted(first + second) == whole and len(whole) == 10  # 2 questions per image
    assert {image for _, image in first}.isdisjoint(image for _, image in second)
    assert len({image for _, image in first}) == 3 and len({image for _, image in second}) == 2


@pytest.mark.slow  # two start-ups, one of two processes
def test_two_processes_evaluate_their_share_and_get_the_one_process_metrics(tmp_path):
    shards = tmp_path / "shards"
    make_sort_of_clevr_shards(shards, {"train": 8, "val": 9}, shard_size=4, regions=True, questions_per_type=2)
    _run(["tests/eval_worker.py"], shards, tmp_path)
    _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "tests/eval_worker.py"], shards, tmp_path)
    one, two = (json.loads((tmp_path / f"metrics-{n}.json").read_text()) for n in (1, 2))
    assert one.keys() == two.keys() == SETTINGS.keys()
    for name, result in one.items():
        metrics, (count,) = dict(result["metrics"]), result["examples"]
        whole = metrics.pop("whole_matrix", None)
        assert two[name]["metrics"] == metrics, name  # equal floats, not close ones
        if "eval.limit" not in " ".join(SETTINGS[name][1]):  # (with a limit each may read past its part)
            assert 0 < min(two[name]["examples"]) and sum(two[name]["examples"]) == count, name  # a part each
        if whole is not None:
            assert {key: metrics[key] for key in whole} == whole, name  # what evaluation gave before sharding
    assert one["vqa"]["metrics"]["vqa_acc"] > 0 and one["captioning"]["metrics"]["cider"] > 0
    assert one["retrieval-all-pairs"]["metrics"]["num_images"] == 7  # eval.limit=7 of the 9 images
    assert one["vqa-limit"]["examples"] != one["vqa"]["examples"]
