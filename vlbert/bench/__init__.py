"""The benchmark suite behind `make bench` (`tools/bench.py`): training step against transformers'
LXMERT, model FLOP utilisation, inference throughput, retrieval scaling and the data pipeline."""
