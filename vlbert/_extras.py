"""Optional dependencies: the applications' (plots, caption metrics, TensorBoard) are extras of the
package, imported where they are used; a missing one is a one-line error naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

# module -> the extra of pyproject.toml that installs it
EXTRAS = {"matplotlib": "plots", "pycocoevalcap": "eval", "torch.utils.tensorboard": "train", "lmdb": "lmdb",
          "torchvision": "extract"}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says which extra installs it."""


def require(module: str, purpose: str) -> ModuleType:
    """`module`, imported; or `MissingExtra` naming `purpose` and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        name = next(name for name in EXTRAS if module == name or module.startswith(name + "."))
        raise MissingExtra(f"{purpose} needs {name.split('.')[-1]}: pip install 'vlbert[{EXTRAS[name]}]'") from error
