"""Runs: what the `vlbert` subcommands do, as library functions (train, evaluate, predict)."""
