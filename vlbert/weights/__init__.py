"""Loading weights from elsewhere: BERT checkpoints for the text stream, original ViLBERT files."""

from vlbert.weights.bert_init import LoadReport, load_text_stream, text_config_from_bert
from vlbert.weights.convert_vilbert import (
    ConversionReport,
    config_from_original,
    convert_checkpoint,
    load_original_state_dict,
    original_to_vlbert,
    vlbert_to_original,
)

__all__ = [
    "ConversionReport",
    "LoadReport",
    "config_from_original",
    "convert_checkpoint",
    "load_original_state_dict",
    "load_text_stream",
    "original_to_vlbert",
    "text_config_from_bert",
    "vlbert_to_original",
]
