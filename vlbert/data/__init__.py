"""Data: the shard format, the Sort-of-CLEVR generator and converters of public datasets."""

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
    "DataError",
    "ImageEntry",
    "RegionFeatures",
    "SampleQuestion",
    "SampleRecord",
    "Scene",
    "SceneObject",
    "SceneQuestion",
    "ShardInfo",
    "ShardSample",
    "ShardSetWriter",
    "WriteOptions",
    "WriteSummary",
    "answer_question",
    "convert_folder",
    "convert_karpathy",
    "convert_vqav2",
    "describe_scene",
    "generate_samples",
    "make_captions",
    "make_sample",
    "make_sort_of_clevr_shards",
    "parse_description",
    "read_folder_entries",
    "read_karpathy_entries",
    "read_vqav2_entries",
    "render_scene",
    "sample_scene",
    "scene_signature",
    "write_entries",
    "write_manifest",
    "write_shard",
]
