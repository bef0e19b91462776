"""vlbert: ViLBERT-family vision-language models.

Names are imported on first use, so `import vlbert.data` or the `vlbert make-shards` command do not
pay for importing transformers and the models.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'vlbert' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
