"""Data: the shard format (`vlbert.data.shards`), the loading pipeline from shards to batches
(`vlbert.data.pipeline`), and where shards come from (`vlbert.data.sources`: converters of public
datasets, the Sort-of-CLEVR generator, named detectors).

The names below are the public API, imported on first use, so writing shards does not import
transformers or timm.
"""

from __future__ import annotations

from vlbert._lazy import lazy_exports

_LAZY = {
    "AnswerVocab": "vlbert.data.pipeline.answers",
    "Batch": "vlbert.data.pipeline.batch",
    "CollateConfig": "vlbert.data.pipeline.collate",
    "Collator": "vlbert.data.pipeline.collate",
    "DataConfig": "vlbert.data.pipeline.loader",
    "DataError": "vlbert.data.shards.schema",
    "DataStats": "vlbert.data.shards.stats",
    "EpochLoader": "vlbert.data.pipeline.loader",
    "EpochReport": "vlbert.data.pipeline.loader",
    "Example": "vlbert.data.pipeline.batch",
    "ImageConfig": "vlbert.data.pipeline.images",
    "BoxSelection": "vlbert.data.sources.extraction.regions",
    "ImageEntry": "vlbert.data.sources.converters",
    "Record": "vlbert.data.shards.records",
    "RegionFeatures": "vlbert.data.shards.schema",
    "SampleQuestion": "vlbert.data.shards.schema",
    "SampleRecord": "vlbert.data.shards.schema",
    "Scene": "vlbert.data.sources.sort_of_clevr.scenes",
    "SceneObject": "vlbert.data.sources.sort_of_clevr.scenes",
    "SceneQuestion": "vlbert.data.sources.sort_of_clevr.scenes",
    "RegionExtractor": "vlbert.data.sources.extraction.regions",
    "ShardDataset": "vlbert.data.pipeline.loader",
    "ShardInfo": "vlbert.data.shards.writer",
    "ShardReadError": "vlbert.data.shards.stats",
    "ShardSample": "vlbert.data.shards.schema",
    "ShardSetWriter": "vlbert.data.shards.writer",
    "StreamPosition": "vlbert.data.pipeline.loader",
    "TextSpec": "vlbert.data.pipeline.tokenize",
    "WriteOptions": "vlbert.data.sources.converters",
    "WriteSummary": "vlbert.data.shards.writer",
    "answer_question": "vlbert.data.sources.sort_of_clevr.scenes",
    "batch_factory": "vlbert.data.pipeline.loader",
    "build_image_transform": "vlbert.data.pipeline.images",
    "build_wordpiece_tokenizer": "vlbert.data.pipeline.tokenize",
    "convert_folder": "vlbert.data.sources.converters",
    "convert_karpathy": "vlbert.data.sources.converters",
    "convert_vqav2": "vlbert.data.sources.vqav2",
    "decode_image": "vlbert.data.pipeline.images",
    "describe_scene": "vlbert.data.sources.sort_of_clevr.captions",
    "generate_samples": "vlbert.data.sources.sort_of_clevr.shards",
    "extract_folder": "vlbert.data.sources.extraction.folder",
    "hard_negative_indices": "vlbert.data.pipeline.negatives",
    "load_detector": "vlbert.data.sources.extraction.detector",
    "load_tokenizer": "vlbert.data.pipeline.tokenize",
    "make_captions": "vlbert.data.sources.sort_of_clevr.captions",
    "make_dataset": "vlbert.data.pipeline.loader",
    "make_loader": "vlbert.data.pipeline.loader",
    "make_sample": "vlbert.data.sources.sort_of_clevr.shards",
    "make_sort_of_clevr_shards": "vlbert.data.sources.sort_of_clevr.shards",
    "mask_regions": "vlbert.data.pipeline.masking",
    "mask_tokens": "vlbert.data.pipeline.masking",
    "normalize_answer": "vlbert.data.pipeline.answers",
    "open_feature_store": "vlbert.data.sources.features.stores",
    "parse_description": "vlbert.data.sources.sort_of_clevr.captions",
    "random_negative_indices": "vlbert.data.pipeline.negatives",
    "read_folder_entries": "vlbert.data.sources.converters",
    "read_karpathy_entries": "vlbert.data.sources.converters",
    "read_records": "vlbert.data.shards.records",
    "read_vqav2_entries": "vlbert.data.sources.vqav2",
    "render_scene": "vlbert.data.sources.sort_of_clevr.scenes",
    "report_skips": "vlbert.data.pipeline.loader",
    "resolve_shards": "vlbert.data.shards.records",
    "sample_scene": "vlbert.data.sources.sort_of_clevr.scenes",
    "scene_signature": "vlbert.data.sources.sort_of_clevr.captions",
    "soft_scores": "vlbert.data.pipeline.answers",
    "write_entries": "vlbert.data.sources.converters",
    "write_manifest": "vlbert.data.shards.writer",
    "write_shard": "vlbert.data.shards.writer",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports("vlbert.data", _LAZY, globals())
