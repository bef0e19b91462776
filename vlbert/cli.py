"""The ``vlbert`` command line: one subcommand per entry of :data:`COMMANDS`.

Adding a subcommand is one entry: a :class:`Command` with a help line, a function that adds its
arguments to an ``argparse`` parser, and a function that runs it and returns the exit status.
Bad user input (:class:`~vlbert.data.schema.DataError`, a missing or unwritable path) ends with
one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from vlbert.commands import make_shards
from vlbert.data.schema import DataError


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {
    "make-shards": Command(make_shards.HELP, make_shards.add_arguments, make_shards.run),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlbert", description="ViLBERT-family vision-language models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (DataError, OSError) as error:
        print(f"vlbert {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
