"""The loading pipeline, shards -> batches (`loader`): records expanded into items (`items`),
decoded into examples (`examples`: `tokenize`, `images`, VQA `answers`), collated into batches
(`collate`, `batch`) with MLM / region `masking`; ITM `negatives` for the objectives."""
