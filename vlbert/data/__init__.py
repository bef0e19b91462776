"""Data: the shard format, the Sort-of-CLEVR generator and converters of public datasets.

Names are imported on first use, so writing shards does not import transformers or timm.
"""

from __future__ import annotations

from vlbert._lazy import lazy_exports

_LAZY = {
    "AnswerVocab": "vlbert.data.vqa",
    "Batch": "vlbert.data.batch",
    "CollateConfig": "vlbert.data.collate",
    "Collator": "vlbert.data.collate",
    "DataConfig": "vlbert.data.loading",
    "DataError": "vlbert.data.schema",
    "DataStats": "vlbert.data.stats",
    "EpochLoader": "vlbert.data.loading",
    "Example": "vlbert.data.batch",
    "ImageConfig": "vlbert.data.images",
    "ImageEntry": "vlbert.data.converters",
    "Record": "vlbert.data.records",
    "RegionFeatures": "vlbert.data.schema",
    "SampleQuestion": "vlbert.data.schema",
    "SampleRecord": "vlbert.data.schema",
    "Scene": "vlbert.data.sort_of_clevr",
    "SceneObject": "vlbert.data.sort_of_clevr",
    "SceneQuestion": "vlbert.data.sort_of_clevr",
    "ShardDataset": "vlbert.data.loading",
    "ShardInfo": "vlbert.data.shards",
    "ShardReadError": "vlbert.data.stats",
    "ShardSample": "vlbert.data.schema",
    "ShardSetWriter": "vlbert.data.shards",
    "StreamPosition": "vlbert.data.loading",
    "TextSpec": "vlbert.data.tokenize",
    "WriteOptions": "vlbert.data.converters",
    "WriteSummary": "vlbert.data.shards",
    "answer_accuracy": "vlbert.data.vqa",
    "answer_question": "vlbert.data.sort_of_clevr",
    "batch_factory": "vlbert.data.loading",
    "build_image_transform": "vlbert.data.images",
    "build_wordpiece_tokenizer": "vlbert.data.tokenize",
    "convert_folder": "vlbert.data.converters",
    "convert_karpathy": "vlbert.data.converters",
    "convert_vqav2": "vlbert.data.convert_vqav2",
    "decode_image": "vlbert.data.images",
    "describe_scene": "vlbert.data.sort_of_clevr_captions",
    "generate_samples": "vlbert.data.sort_of_clevr_shards",
    "hard_negative_indices": "vlbert.data.negatives",
    "load_tokenizer": "vlbert.data.tokenize",
    "make_captions": "vlbert.data.sort_of_clevr_captions",
    "make_dataset": "vlbert.data.loading",
    "make_loader": "vlbert.data.loading",
    "make_sample": "vlbert.data.sort_of_clevr_shards",
    "make_sort_of_clevr_shards": "vlbert.data.sort_of_clevr_shards",
    "mask_regions": "vlbert.data.masking",
    "mask_tokens": "vlbert.data.masking",
    "normalize_answer": "vlbert.data.vqa",
    "pair_texts": "vlbert.data.negatives",
    "parse_description": "vlbert.data.sort_of_clevr_captions",
    "random_negative_indices": "vlbert.data.negatives",
    "read_folder_entries": "vlbert.data.converters",
    "read_karpathy_entries": "vlbert.data.converters",
    "read_records": "vlbert.data.records",
    "read_vqav2_entries": "vlbert.data.convert_vqav2",
    "render_scene": "vlbert.data.sort_of_clevr",
    "resolve_shards": "vlbert.data.records",
    "sample_scene": "vlbert.data.sort_of_clevr",
    "scene_signature": "vlbert.data.sort_of_clevr_captions",
    "soft_scores": "vlbert.data.vqa",
    "vqa_accuracy": "vlbert.data.vqa",
    "write_entries": "vlbert.data.converters",
    "write_manifest": "vlbert.data.shards",
    "write_shard": "vlbert.data.shards",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports("vlbert.data", _LAZY, globals())
