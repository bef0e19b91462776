"""Region features made elsewhere, read per image: the original project's LMDB and ``.npy``
dicts, the bottom-up-attention / LXMERT TSV, and vlbert's own ``{image_id}.npz`` folders
(:func:`~vlbert.data.sources.features.stores.open_feature_store`)."""
