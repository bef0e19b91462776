"""Where shards come from: converters of public image-text layouts (`converters`, `vqav2`), the
built-in Sort-of-CLEVR generator (`sort_of_clevr`), and the named region detectors (`detectors`)."""
