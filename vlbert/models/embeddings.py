"""The visual stream's input embedding, as in ViLBERT: feature and location, summed, normalised."""

from __future__ import annotations

from torch import Tensor, nn

from vlbert.config import VLBertConfig


class RegionEmbeddings(nn.Module):
    """`LayerNorm(Linear(feature) + Linear(location))`, then dropout; no position or type embedding.

    Parameter names follow the original `BertImageEmbeddings`.
    """

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__()
        self.image_embeddings = nn.Linear(config.v_feature_size, config.v_hidden_size)
        self.image_location_embeddings = nn.Linear(5, config.v_hidden_size)
        self.LayerNorm = nn.LayerNorm(config.v_hidden_size, eps=config.layer_norm_eps)
        # The original uses the text stream's hidden dropout here.
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, features: Tensor, locations: Tensor) -> Tensor:
        # features [B, R, Df], locations [B, R, 5] -> [B, R, Dv]
        embedded = self.image_embeddings(features) + self.image_location_embeddings(locations)
        return self.dropout(self.LayerNorm(embedded))
