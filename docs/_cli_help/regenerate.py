"""Regenerate (or check) the ``--help`` texts included in ``docs/cli.rst``.

Run from the repository root after changing a command or an option::

    python docs/_cli_help/regenerate.py          # rewrite the .txt files
    python docs/_cli_help/regenerate.py --check  # exit 1 if one is out of date

The texts are what a terminal 80 columns wide shows.
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from astroml_pipe.cli import cli

HERE = Path(__file__).resolve().parent
COMMANDS = {
    "main": [],
    "run": ["run"],
    "train": ["train"],
    "evaluate": ["evaluate"],
    "validate": ["validate"],
    "stages": ["stages"],
    "simulate": ["simulate"],
    "simulate-photometry": ["simulate", "photometry"],
    "simulate-cutouts": ["simulate", "cutouts"],
}


def help_text(args: list[str]) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="astroml-pipe", terminal_width=78)
    if result.exit_code != 0:
        raise SystemExit(f"astroml-pipe {' '.join(args)} --help failed:\n{result.output}")
    return result.output


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, args in COMMANDS.items():
        path = HERE / f"{name}.txt"
        text = help_text(args)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print("out of date: " + ", ".join(stale) + " (run python docs/_cli_help/regenerate.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
