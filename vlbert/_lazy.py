"""Module attributes imported on first use (PEP 562), so light entry points stay light."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(module: str, names: dict[str, str], namespace: dict[str, Any]) -> tuple[Callable, Callable]:
    """`__getattr__` and `__dir__` for `module` whose public `names` map to the modules defining them."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
