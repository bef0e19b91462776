"""The shard format: the sample schema (`schema`), writing shard sets and their manifest
(`writer`), reading them back as records (`records`), and the accounting of bad input (`stats`)."""
