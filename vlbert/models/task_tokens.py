"""12-in-1's task tokens (`--task_specific_tokens` in vilbert-multi-task), off by default.

The original `BertEmbeddings.forward(input_ids, token_type_ids, task_ids)` sums the word,
position and token-type embeddings of the L input tokens, then inserts one learnt task embedding
after the first one ([CLS]), and only then applies LayerNorm and dropout:

    e_i = word(x_i) + position(i) + type(t_i)            i = 0 .. L-1 (positions as without the token)
    [e_0, task(task_id), e_1, ..., e_{L-1}]  -> LayerNorm -> dropout      [B, L + 1, Dt]

so the task token has neither a position nor a token-type embedding, and the text tokens keep the
positions they would have without it. `BertModel.forward` extends the text mask by one at the
front, `cat([1, attention_mask])`, and every text mask of the model (the text layers and the
co-attention) reads that extended mask. With `config.task_specific_tokens` the text stream here
does the same: `TextStates` and the backbone's text outputs have L + 1 positions, the task token
at index 1; the per-token heads (MLM, captioning) drop that position again so that their logits
line up with `input_ids`.

`task_ids` is an int or a tensor [B] (or [B, 1], the original's shape) of ids; without it the
model uses `config.default_task_id`. The ids of 12-in-1 (`TASKn` in vilbert-multi-task's
`vilbert_tasks.yml`; the original passes `int("TASK1"[4:])`) are in `TWELVE_IN_ONE_TASK_IDS`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from transformers.models.bert.modeling_bert import BertEmbeddings

from vlbert.config import VLBertConfig

# name in vilbert_tasks.yml -> id (the number of its TASKn key)
TWELVE_IN_ONE_TASK_IDS: dict[str, int] = {
    "VQA": 1, "GenomeQA": 2, "VisualDialog": 3, "Visual7w": 4, "VCR_Q-A": 5, "VCR_QA-R": 6,
    "RetrievalCOCO": 7, "RetrievalFlickr30k": 8, "refcoco": 9, "refcoco+": 10, "refcocog": 11,
    "NLVR2": 12, "VisualEntailment": 13, "GuessWhat": 14, "GQA": 15, "Foil": 16,
    "GuessWhatPointing": 17, "FlickrGrounding": 18,
}
# vlbert task model -> the 12-in-1 task whose head it takes over (None: more than one fits).
TASK_ID_FOR_HEAD: dict[str, int | None] = {
    "vqa": TWELVE_IN_ONE_TASK_IDS["VQA"],  # vil_prediction, trained on TASK1
    "retrieval": None,  # vil_logit: RetrievalCOCO (7) or RetrievalFlickr30k (8)
}
TASK_TOKEN_INDEX = 1  # the task token's position in the text stream


class TaskTokenEmbeddings(BertEmbeddings):
    """`BertEmbeddings` plus the original's `task_embeddings` table, inserted after [CLS]."""

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__(config.text_bert_config())
        self.task_embeddings = nn.Embedding(config.num_task_embeddings, config.hidden_size)

    def forward(
        self, input_ids: Tensor, token_type_ids: Tensor | None = None, task_ids: Tensor | None = None
    ) -> Tensor:
        # input_ids [B, L], task_ids [B] -> [B, L + 1, Dt]
        if task_ids is None:
            raise ValueError("task-token embeddings need task_ids")
        length = input_ids.shape[1]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        embeddings = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(self.position_ids[:, :length])
            + self.token_type_embeddings(token_type_ids)
        )
        task = self.task_embeddings(task_ids.reshape(-1, 1))  # [B, 1, Dt]
        embeddings = torch.cat([embeddings[:, :1], task, embeddings[:, 1:]], dim=1)
        return self.dropout(self.LayerNorm(embeddings))


def build_text_embeddings(config: VLBertConfig) -> BertEmbeddings:
    """The text stream's input embedding: plain BERT's, or with the task token."""
    if config.task_specific_tokens:
        return TaskTokenEmbeddings(config)
    return BertEmbeddings(config.text_bert_config())


def resolve_task_ids(config: VLBertConfig, task_ids: Tensor | int | None, batch: int, device: torch.device) -> Tensor:
    """task_ids as a LongTensor [B]: an int is broadcast, None means `config.default_task_id`."""
    if task_ids is None:
        task_ids = config.default_task_id
    if task_ids is None:
        raise ValueError(
            "this model has task tokens (task_specific_tokens=True, as 12-in-1): pass task_ids "
            "(e.g. 1 for VQA, 8 for Flickr30k retrieval; vlbert.models.task_tokens.TWELVE_IN_ONE_TASK_IDS) "
            "or set default_task_id in its config"
        )
    ids = torch.as_tensor(task_ids, dtype=torch.long, device=device).reshape(-1)
    if ids.numel() == 1:
        ids = ids.expand(batch)
    if ids.shape[0] != batch:
        raise ValueError(f"task_ids has {ids.shape[0]} ids for a batch of {batch}")
    if ids.min() < 0 or ids.max() >= config.num_task_embeddings:
        raise ValueError(f"task_ids must be in [0, {config.num_task_embeddings}), got {ids.tolist()}")
    return ids


def embed_text(
    embeddings: BertEmbeddings,
    config: VLBertConfig,
    input_ids: Tensor,
    mask: Tensor,
    token_type_ids: Tensor | None,
    task_ids: Tensor | int | None,
) -> tuple[Tensor, Tensor]:
    """(hidden [B, L', Dt], mask [B, L'] bool): L' = L, or L + 1 with the task token."""
    if not config.task_specific_tokens:
        if task_ids is not None:
            raise ValueError("task_ids given, but this model has no task tokens (task_specific_tokens=False)")
        return embeddings(input_ids=input_ids, token_type_ids=token_type_ids), mask
    ids = resolve_task_ids(config, task_ids, input_ids.shape[0], input_ids.device)
    hidden = embeddings(input_ids, token_type_ids=token_type_ids, task_ids=ids)
    # as the original BertModel: the text mask gains a 1 at the front
    return hidden, torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)


def drop_task_token(hidden: Tensor, config: VLBertConfig) -> Tensor:
    """Per-token text states [B, L', D] without the task token and the prompt-tuning tokens that
    follow [CLS] (so position i is input token i)."""
    extra = int(config.task_specific_tokens) + config.num_prompt_tokens
    if not extra:
        return hidden
    return torch.cat([hidden[:, :TASK_TOKEN_INDEX], hidden[:, TASK_TOKEN_INDEX + extra :]], dim=1)
