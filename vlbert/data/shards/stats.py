"""Bad-input accounting for the loading pipeline: what was skipped and why, and the error policy.

Every problem the loader meets is either counted under a *reason* and skipped (``on_error="skip"``)
or raised as a :class:`ShardReadError` naming the shard and the sample key (``on_error="raise"``).
Nothing is dropped silently. Reasons and their units:

==================== ========================================================================
reason               counts
==================== ========================================================================
corrupt_image        samples whose image could not be decoded (truncated or garbage bytes)
decompression_bomb   samples whose image exceeds Pillow's ``Image.MAX_IMAGE_PIXELS``
missing_image        samples without a ``png``/``jpg`` member (pixel inputs)
missing_features     samples without a usable ``npz`` member (region inputs)
bad_features         samples whose ``npz`` is unreadable or has inconsistent shapes
bad_json             samples whose ``json`` member is missing or malformed
empty_text           captions or questions that are empty (the text is dropped, not the sample)
no_text              samples left with no caption / question for the task
long_text            texts over ``max_length`` tokens (only with ``on_long_text="skip"``)
truncated_tar        tar shards that end early (one per shard)
bad_tar              tar shards that cannot be opened or read for another reason (one per shard)
incomplete_sample    samples cut off by a truncated shard
missing_samples      samples a shard's manifest count promises but the shard does not hold
==================== ========================================================================

`DataStats.skip_line` says it in one line for the user, counting samples, texts and shards apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vlbert.data.shards.schema import DataError

OnError = Literal["skip", "raise"]
ON_ERROR: tuple[str, ...] = ("skip", "raise")
TEXT_REASONS = frozenset({"empty_text", "long_text"})  # counted in texts; the sample may stay
SHARD_REASONS = frozenset({"truncated_tar", "bad_tar"})  # counted in shards; their samples are counted apart


class ShardReadError(DataError):
    """A bad sample or shard met with ``on_error="raise"``; names the shard url and the sample key."""

    def __init__(self, reason: str, url: str, key: str | None, detail: str) -> None:
        self.reason, self.url, self.key, self.detail = reason, url, key, detail
        where = f"shard {url}" + (f", sample {key!r}" if key else "")
        super().__init__(f"{where}: {reason}: {detail}")


@dataclass
class DataStats:
    """Counts for one epoch (or, inside a worker, since the last example handed on)."""

    samples: int = 0  # tar samples read
    examples: int = 0  # examples handed to collation
    truncated_texts: int = 0  # texts cut to max_length tokens
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count, see the module doc

    def count(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def add(self, other: DataStats | None) -> DataStats:
        """Add ``other`` into this one in place; return self."""
        if other is not None:
            self.samples += other.samples
            self.examples += other.examples
            self.truncated_texts += other.truncated_texts
            for reason, n in other.skipped.items():
                self.count(reason, n)
        return self

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def skipped_samples(self) -> int:
        """Samples skipped whole (every reason but the text and shard ones)."""
        return sum(n for r, n in self.skipped.items() if r not in TEXT_REASONS | SHARD_REASONS)

    @property
    def total_samples(self) -> int:
        """Samples read, and those the manifest promised but that could not be read."""
        return self.samples + self.skipped.get("missing_samples", 0)

    def is_empty(self) -> bool:
        return self.samples == 0 and self.examples == 0 and self.truncated_texts == 0 and not self.skipped

    def summary(self, epoch: int | None = None) -> str:
        """One line, e.g. ``data epoch 0: 120 samples, 700 examples, skipped 2 (corrupt_image 2), ...``."""
        head = "data" if epoch is None else f"data epoch {epoch}"
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.skipped.items()))
        skipped = f"skipped {self.num_skipped}" + (f" ({reasons})" if reasons else "")
        return (
            f"{head}: {self.samples} samples, {self.examples} examples, {skipped}, "
            f"{self.truncated_texts} texts truncated"
        )

    def skip_line(self, label: str) -> str:
        """One line for the user, e.g. ``epoch 0: skipped 1 of 64 samples: bad_json 1``; dropped
        texts, broken shards and truncated texts follow when there are any, each after a ``;``."""
        samples = {r: n for r, n in self.skipped.items() if r not in TEXT_REASONS | SHARD_REASONS}
        texts = {r: n for r, n in self.skipped.items() if r in TEXT_REASONS}
        shards = {r: n for r, n in self.skipped.items() if r in SHARD_REASONS}
        line = f"{label}: skipped {self.skipped_samples} of {self.total_samples} samples" + _listing(samples)
        if texts:
            line += f"; dropped {sum(texts.values())} texts" + _listing(texts)
        if shards:
            line += "; broken shards" + _listing(shards)
        if self.truncated_texts:
            line += f"; {self.truncated_texts} texts truncated"
        return line

    def as_dict(self) -> dict[str, object]:
        """For a metrics file: samples, skipped samples, every reason's count, truncated texts."""
        return {"samples": self.total_samples, "skipped_samples": self.skipped_samples,
                "skipped_reasons": dict(sorted(self.skipped.items())), "truncated_texts": self.truncated_texts}


def _listing(counts: dict[str, int]) -> str:
    return (": " + ", ".join(f"{r} {n}" for r, n in sorted(counts.items()))) if counts else ""


class ErrorPolicy:
    """Applies ``on_error`` and keeps the counts of one pipeline (one worker's stream)."""

    def __init__(self, on_error: str = "skip") -> None:
        if on_error not in ON_ERROR:
            raise DataError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        self.pending = DataStats()  # not yet handed on with an example

    def bad(self, reason: str, url: str, key: str | None, detail: str, n: int = 1) -> None:
        """Count ``n`` under ``reason``, or raise if the policy says so."""
        if self.on_error == "raise":
            raise ShardReadError(reason, url, key, detail)
        self.pending.count(reason, n)

    def take(self) -> DataStats:
        """The counts since the last call (attached to the next example that leaves the worker)."""
        stats, self.pending = self.pending, DataStats()
        return stats


class SampleError(Exception):
    """Raised by decoders for one bad sample; the pipeline turns it into a count or a `ShardReadError`."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")
