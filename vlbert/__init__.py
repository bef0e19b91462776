"""vlbert: ViLBERT-family vision-language models.

Names are imported on first use, so `import vlbert.data` or the `vlbert make-shards` command do not
pay for importing transformers and the models.
"""

from __future__ import annotations

from vlbert._lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "VLBertConfig": "vlbert.config",
    "create_config": "vlbert.factory",
    "create_model": "vlbert.factory",
    "list_models": "vlbert.factory",
    "VLBertModel": "vlbert.models",
    "VLBertForPreTraining": "vlbert.models",
    "VLBertForVQA": "vlbert.models",
    "VLBertForRetrieval": "vlbert.models",
    "VLBertForCaptioning": "vlbert.models",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports("vlbert", _LAZY, globals())
