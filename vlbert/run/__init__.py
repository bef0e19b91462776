"""Runs: what the `vlbert` subcommands do, as library functions (train, predict; evaluation is
`vlbert.eval`)."""
