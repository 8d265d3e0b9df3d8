"""Every ``tfnas COMMAND --flag`` in a shell block (```bash) of the documentation (every page under ``docs/``, and the
README) is a flag that ``tfnas COMMAND --help`` lists (for ``tfnas search``, ``tfnas search --strategy NAME --help``,
whose settings are that strategy's). The commands are read as the shell reads them: ``\\`` continues a line, ``#``
starts a comment, ``&&``, ``||``, ``|`` and ``;`` separate commands."""
from __future__ import annotations

import contextlib
import functools
import io
import re
import shlex
from pathlib import Path

import pytest

from tfnas import cli

REPOSITORY = Path(__file__).resolve().parents[1]
PAGES = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").rglob("*.md"))]
SHELL_BLOCK = re.compile(r"^[ \t]*```bash\n(.*?)^[ \t]*```", re.S | re.M)
SEPARATORS = {"&&", "||", "|", ";"}
#: A flag as ``--help`` lists it (``-h, --help``, ``--out OUT``, ``--set KEY=VALUE``).
HELP_FLAG = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")


def shell_lines(block: str) -> list[list[str]]:
    """The words of each line of a shell block: ``\\`` joins a line to the next, as does a quote left open."""
    lines, pending = [], ""
    for line in block.replace("\\\n", " ").splitlines():
        pending += line + "\n"
        try:
            lines.append(shlex.split(pending, comments=True))
        except ValueError:  # no closing quotation yet
            continue
        pending = ""
    assert not pending, f"a quote is never closed: {pending!r}"
    return lines


def shell_commands(block: str) -> list[list[str]]:
    """The commands of a shell block, each as its words."""
    commands = []
    for words in shell_lines(block):
        current: list[str] = []
        for word in words:
            if word in SEPARATORS:
                commands.append(current)
                current = []
            else:
                current.append(word)
        commands.append(current)
    return [command for command in commands if command]


def tfnas_commands() -> list[tuple[str, list[str]]]:
    """``(page, words after "tfnas")`` of every ``tfnas`` command in a shell block of the documentation."""
    found = []
    for page in PAGES:
        for block in SHELL_BLOCK.findall(page.read_text(encoding="utf-8")):
            for command in shell_commands(block):
                if "tfnas" in command:  # after environment settings such as TF_CONFIG=...
                    found.append((page.relative_to(REPOSITORY).as_posix(), command[command.index("tfnas") + 1:]))
    return found


@functools.cache
def help_flags(*argv: str) -> frozenset[str]:
    """The flags that ``tfnas *argv --help`` lists."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        cli.main([*argv, "--help"])
    assert done.value.code == 0
    return frozenset(HELP_FLAG.findall(out.getvalue()))


def flags_of(words: list[str]) -> list[str]:
    return [word.split("=", 1)[0] for word in words if word.startswith("--")]


COMMANDS = tfnas_commands()


def test_shell_commands_are_read_as_the_shell_reads_them():
    block = ("# a comment --not-a-flag\n"
             "tfnas train --genotype darts_v2 \\\n    --out runs/x   # --nor-this\n"
             "X='{\"a\": 1}' tfnas show darts_v2 && tfnas compare --set 'seeds=[1, 2]' | tee log\n")
    assert shell_commands(block) == [["tfnas", "train", "--genotype", "darts_v2", "--out", "runs/x"],
                                     ["X={\"a\": 1}", "tfnas", "show", "darts_v2"],
                                     ["tfnas", "compare", "--set", "seeds=[1, 2]"], ["tee", "log"]]


def test_the_help_of_a_strategy_lists_its_own_settings():
    assert "--child-max-steps" in help_flags("search", "--strategy", "nao")
    assert "--child-max-steps" not in help_flags("search", "--strategy", "darts")
    assert {"--out", "--format", "--replace"} <= help_flags("export")


def test_the_documentation_has_tfnas_commands_of_every_subcommand():
    subcommands = {words[0] for _, words in COMMANDS if words and not words[0].startswith("-")}
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices   # the CLI's own list
    assert subcommands == set(commands) and "results" in subcommands


@pytest.mark.parametrize("page, words", [pytest.param(page, words, id=f"{page}: tfnas {' '.join(words)}"[:150])
                                         for page, words in COMMANDS])
def test_every_flag_of_a_documented_command_is_in_its_help(page, words):
    if not words or words[0].startswith("-"):
        argv: tuple[str, ...] = ()
    elif words[0] == "search":
        argv = ("search", "--strategy", words[words.index("--strategy") + 1])
    else:
        argv = (words[0],)
    unknown = [flag for flag in flags_of(words) if flag not in help_flags(*argv)]
    assert not unknown, f"{page}: `tfnas {' '.join(argv)} --help` does not list {unknown}"
