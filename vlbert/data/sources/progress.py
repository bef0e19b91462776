"""A progress bar for long conversions: tqdm's when it is installed (transformers brings it), else none."""

from __future__ import annotations

from typing import Any, Iterable, TypeVar

T = TypeVar("T")


def progress_bar(items: Iterable[T], enabled: bool = True, **options: Any) -> Iterable[T]:
    """``items`` wrapped in a tqdm bar on stderr (``options``: tqdm's, e.g. ``unit``, ``total``)."""
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, dynamic_ncols=True, **options)
