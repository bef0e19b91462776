"""Subcommands of the ``vlbert`` command line; each module has ``HELP``, ``add_arguments`` and ``run``."""
