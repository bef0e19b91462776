"""The quickstart: pre-training, then VQA, retrieval and captioning on built-in Sort-of-CLEVR, and its report."""
