"""Training: optimiser and schedule, objectives per task, the loop, checkpoints."""
