"""Evaluation of a task model on a split, with the community's metrics:

- VQA (`vqa`): accuracy (the official normalisation and 10-annotator averaging; exact match for
  single-answer data), overall and per question type;
- retrieval (`gallery`, over the scores of `retrieval`): Recall@1/5/10 both ways, all-pairs ITM or
  ITC top-k then ITM re-rank;
- captioning (`captioning`, decoding with `decoding`): BLEU-4 and CIDEr of decoded captions against
  every reference;
- pre-training (`pretraining`): MLM accuracy and ITM accuracy (positives and re-paired negatives).

The metric functions are in `metrics`; `split` builds a split's evaluation loader and runs the
task's loop (`evaluate_split`, and `evaluate_model_dir` for a saved model directory, which
`saved` writes and reads back).

Under torchrun VQA, retrieval and captioning are evaluated by every process on its share of the
split's records and the results gathered in stream order (`sharded`): the metrics equal one
process's. `limit` counts from the start of the split whatever the number of processes.
"""
