"""vlbert: ViLBERT-family vision-language models."""

from transformers import AutoConfig, AutoModel

from vlbert.config import VLBertConfig
from vlbert.factory import create_config, create_model, list_models
from vlbert.models import (
    VLBertForCaptioning,
    VLBertForPreTraining,
    VLBertForRetrieval,
    VLBertForVQA,
    VLBertModel,
)

AutoConfig.register("vlbert", VLBertConfig, exist_ok=True)
AutoModel.register(VLBertConfig, VLBertModel, exist_ok=True)

__version__ = "0.1.0"

__all__ = [
    "VLBertConfig",
    "VLBertForCaptioning",
    "VLBertForPreTraining",
    "VLBertForRetrieval",
    "VLBertForVQA",
    "VLBertModel",
    "create_config",
    "create_model",
    "list_models",
]
