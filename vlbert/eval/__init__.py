"""Evaluation: metrics, retrieval in two modes, caption decoding."""
