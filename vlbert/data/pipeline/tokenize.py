"""Tokenisation: load a BERT WordPiece tokenizer, or train one on the data's own text.

Both return a `transformers.BertTokenizerFast` (with the `tokenizers` backend), so the special
tokens are BERT's: [PAD] = 0, [UNK], [CLS], [SEP], [MASK].
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import normalizers, pre_tokenizers
from transformers import AutoTokenizer, BertTokenizerFast, PreTrainedTokenizerBase

from vlbert.data.shards.schema import DataError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # [PAD] first: id 0
_CONFIG_FILES = ("tokenizer.json", "tokenizer_config.json")


def _hub_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """A hub tokenizer from the local cache; the network only when HF_HUB_OFFLINE is not set."""
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except OSError as cached_error:
        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
            message = f"tokenizer {name!r} is not a local path and not in the hub cache (offline)"
            raise DataError(message) from cached_error
        return AutoTokenizer.from_pretrained(name)


def load_tokenizer(path_or_name: str | os.PathLike[str], lowercase: bool = True) -> PreTrainedTokenizerBase:
    """A BERT tokenizer from a directory (tokenizer files or a bare ``vocab.txt``), a ``vocab.txt``
    file, or a hub name (taken from the local cache first). ``lowercase`` applies to bare vocab
    files only; a saved tokenizer keeps its own setting."""
    path = Path(path_or_name)
    if path.is_dir():
        if any((path / name).is_file() for name in _CONFIG_FILES):
            return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        if (path / "vocab.txt").is_file():
            return BertTokenizerFast(vocab=str(path / "vocab.txt"), do_lower_case=lowercase)
        raise DataError(f"{path} holds neither tokenizer files nor a vocab.txt")
    if path.is_file():
        return BertTokenizerFast(vocab=str(path), do_lower_case=lowercase)
    return _hub_tokenizer(str(path_or_name))


def build_wordpiece_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | os.PathLike[str],
    min_frequency: int = 1,
    lowercase: bool = True,
) -> BertTokenizerFast:
    """Build a WordPiece vocabulary of at most ``vocab_size`` entries from ``texts`` (BERT's
    normalisation and pre-tokenisation), save it to ``out_dir`` (reload with `load_tokenizer`)
    and return it.

    The vocabulary is every character seen (alone and as a ``##`` continuation, so any word made
    of them can be spelled) and then the most frequent whole words, ties broken alphabetically.
    It depends on the text alone: the `tokenizers` trainer breaks ties between equally frequent
    merges differently in every process, which made a resumed run re-tokenise its data."""
    normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    splitter = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({char for word in counts for char in word})
    alphabet = [*chars, *(f"##{char}" for char in chars)]
    room = vocab_size - len(SPECIAL_TOKENS) - len(alphabet)
    if room < 0:
        raise DataError(f"vocab_size {vocab_size} is too small: the text has {len(chars)} distinct characters, "
                        f"which need {len(alphabet) + len(SPECIAL_TOKENS)} entries")
    frequent = sorted((w for w, n in counts.items() if n >= min_frequency and w not in alphabet), key=lambda w: (-counts[w], w))
    tokens = [*SPECIAL_TOKENS, *alphabet, *frequent[:room]]
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(tokens)}, do_lower_case=lowercase)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


@dataclass(frozen=True)
class TextSpec:
    """What collation and masking need to know about the vocabulary."""

    pad_id: int
    mask_id: int
    vocab_size: int
    special_ids: tuple[int, ...]
    focus_ids: tuple[int, ...] = ()  # the tokens of the words MLM masks more often (CollateConfig.mlm_focus_words)

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, focus_words: Sequence[str] = ()) -> TextSpec:
        """The tokenizer's special ids, and the ids of every token of ``focus_words``."""
        if tokenizer.pad_token_id is None or tokenizer.mask_token_id is None:
            raise DataError("the tokenizer needs [PAD] and [MASK] tokens")
        focus = sorted({i for word in focus_words for i in tokenizer(word, add_special_tokens=False)["input_ids"]})
        return cls(tokenizer.pad_token_id, tokenizer.mask_token_id, len(tokenizer), tuple(tokenizer.all_special_ids),
                   tuple(focus))


@dataclass
class EncodedText:
    ids: list[int]  # [CLS] ... [SEP]
    truncated: bool  # the text had more than max_length tokens


class TextEncoder:
    """Text -> token ids with [CLS]/[SEP], cut to ``max_length`` (the closing [SEP] is kept).
    Remembers up to ``cache_size`` texts (templated questions repeat a lot)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int, cache_size: int = 100_000) -> None:
        if max_length < 3:
            raise DataError(f"max_length must leave room for [CLS], a token and [SEP]; got {max_length}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.cache_size = cache_size
        self.cache: dict[str, list[int]] = {}

    def __call__(self, text: str) -> EncodedText:
        ids = self.cache.get(text)
        if ids is None:
            ids = list(self.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])
            if len(self.cache) >= self.cache_size:
                self.cache.clear()
            self.cache[text] = ids
        if len(ids) <= self.max_length:
            return EncodedText(list(ids), False)
        return EncodedText(ids[: self.max_length - 1] + [ids[-1]], True)
