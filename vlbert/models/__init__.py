"""Model classes: the ViLBERT backbone, its image encoders and the task models."""

from vlbert.models.backbone import VLBertModel, VLBertPreTrainedModel
from vlbert.models.outputs import (
    CaptioningOutput,
    ImageStates,
    PreTrainingOutput,
    RetrievalOutput,
    TextStates,
    VLBertOutput,
    VQAOutput,
)
from vlbert.models.tasks import (
    TASK_MODELS,
    VLBertForCaptioning,
    VLBertForPreTraining,
    VLBertForRetrieval,
    VLBertForVQA,
)

__all__ = [
    "TASK_MODELS",
    "CaptioningOutput",
    "ImageStates",
    "PreTrainingOutput",
    "RetrievalOutput",
    "TextStates",
    "VLBertForCaptioning",
    "VLBertForPreTraining",
    "VLBertForRetrieval",
    "VLBertForVQA",
    "VLBertModel",
    "VLBertOutput",
    "VLBertPreTrainedModel",
    "VQAOutput",
]
