"""Sort-of-CLEVR, generated on any machine: scenes and questions (`scenes`), captions
(`captions`), oracle region features (`regions`), a colour detector for such images (`detect`),
and the shard set writer (`shards`)."""
