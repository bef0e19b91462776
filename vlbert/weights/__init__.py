"""Weights as state dicts: saving and loading model directories, BERT checkpoints for the text
stream, original ViLBERT files. Nothing here imports the model classes (`vlbert.models` imports this)."""

from vlbert.weights.bert_init import load_text_stream, text_config_from_bert
from vlbert.weights.checkpoint import LoadReport
from vlbert.weights.convert_vilbert import (
    ConversionReport,
    config_from_original,
    load_original_state_dict,
    original_to_vlbert,
    vlbert_to_original,
)

__all__ = [
    "ConversionReport",
    "LoadReport",
    "config_from_original",
    "load_original_state_dict",
    "load_text_stream",
    "original_to_vlbert",
    "text_config_from_bert",
    "vlbert_to_original",
]
