"""The visual stream's input embedding, as in ViLBERT: feature and location, summed, normalised."""

from __future__ import annotations

from torch import Tensor, nn

from vlbert.config import VLBertConfig


class RegionEmbeddings(nn.Module):
    """`LayerNorm(Linear(feature) + Linear(location))`, then dropout; no position or type embedding.

    With `config.v_location_norm` (not in the original) the two terms are normalised apart and
    averaged, `(LN(Linear(feature)) + LN_loc(Linear(location))) / 2` as in LXMERT, so that the box
    weighs as much as the feature whatever their input scales. Parameter names follow the original
    `BertImageEmbeddings`; the option adds `location_LayerNorm`.
    """

    def __init__(self, config: VLBertConfig) -> None:
        super().__init__()
        self.feature_LayerNorm = (
            nn.LayerNorm(config.v_feature_size, eps=config.layer_norm_eps) if config.v_feature_norm else None
        )
        self.image_embeddings = nn.Linear(config.v_feature_size, config.v_hidden_size)
        self.image_location_embeddings = nn.Linear(5, config.v_hidden_size)
        self.LayerNorm = nn.LayerNorm(config.v_hidden_size, eps=config.layer_norm_eps)
        self.location_LayerNorm = (
            nn.LayerNorm(config.v_hidden_size, eps=config.layer_norm_eps) if config.v_location_norm else None
        )
        # The original uses the text stream's hidden dropout here.
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, features: Tensor, locations: Tensor) -> Tensor:
        # features [B, R, Df], locations [B, R, 5] -> [B, R, Dv]
        if self.feature_LayerNorm is not None:
            features = self.feature_LayerNorm(features)  # each region's input standardised
        feature, location = self.image_embeddings(features), self.image_location_embeddings(locations)
        if self.location_LayerNorm is None:
            return self.dropout(self.LayerNorm(feature + location))
        return self.dropout((self.LayerNorm(feature) + self.location_LayerNorm(location)) / 2)
