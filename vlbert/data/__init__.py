"""Data: the shard format, the Sort-of-CLEVR generator and converters of public datasets."""

from vlbert.data.batch import Batch, Example
from vlbert.data.collate import CollateConfig, Collator
from vlbert.data.images import ImageConfig, build_image_transform, decode_image
from vlbert.data.loading import (
    DataConfig,
    EpochLoader,
    ShardDataset,
    StreamPosition,
    batch_factory,
    make_dataset,
    make_loader,
)
from vlbert.data.masking import mask_regions, mask_tokens
from vlbert.data.negatives import hard_negative_indices, pair_texts, random_negative_indices
from vlbert.data.records import Record, read_records, resolve_shards
from vlbert.data.stats import DataStats, ShardReadError
from vlbert.data.tokenize import TextSpec, build_wordpiece_tokenizer, load_tokenizer
from vlbert.data.vqa import AnswerVocab, answer_accuracy, normalize_answer, soft_scores, vqa_accuracy
from vlbert.data.convert_vqav2 import convert_vqav2, read_vqav2_entries
from vlbert.data.converters import (
    ImageEntry,
    WriteOptions,
    convert_folder,
    convert_karpathy,
    read_folder_entries,
    read_karpathy_entries,
    write_entries,
)
from vlbert.data.schema import DataError, RegionFeatures, SampleQuestion, SampleRecord, ShardSample
from vlbert.data.shards import ShardInfo, ShardSetWriter, WriteSummary, write_manifest, write_shard
from vlbert.data.sort_of_clevr import Scene, SceneObject, SceneQuestion, answer_question, render_scene, sample_scene
from vlbert.data.sort_of_clevr_captions import describe_scene, make_captions, parse_description, scene_signature
from vlbert.data.sort_of_clevr_shards import generate_samples, make_sample, make_sort_of_clevr_shards

__all__ = [
    "AnswerVocab",
    "Batch",
    "CollateConfig",
    "Collator",
    "DataConfig",
    "DataError",
    "DataStats",
    "EpochLoader",
    "Example",
    "ImageConfig",
    "ImageEntry",
    "Record",
    "RegionFeatures",
    "SampleQuestion",
    "SampleRecord",
    "Scene",
    "SceneObject",
    "SceneQuestion",
    "ShardDataset",
    "ShardInfo",
    "ShardReadError",
    "ShardSample",
    "ShardSetWriter",
    "StreamPosition",
    "TextSpec",
    "WriteOptions",
    "WriteSummary",
    "answer_accuracy",
    "answer_question",
    "batch_factory",
    "build_image_transform",
    "build_wordpiece_tokenizer",
    "convert_folder",
    "convert_karpathy",
    "convert_vqav2",
    "decode_image",
    "describe_scene",
    "generate_samples",
    "hard_negative_indices",
    "load_tokenizer",
    "make_captions",
    "make_dataset",
    "make_loader",
    "make_sample",
    "make_sort_of_clevr_shards",
    "mask_regions",
    "mask_tokens",
    "normalize_answer",
    "pair_texts",
    "parse_description",
    "random_negative_indices",
    "read_folder_entries",
    "read_karpathy_entries",
    "read_records",
    "read_vqav2_entries",
    "render_scene",
    "resolve_shards",
    "sample_scene",
    "scene_signature",
    "soft_scores",
    "vqa_accuracy",
    "write_entries",
    "write_manifest",
    "write_shard",
]
