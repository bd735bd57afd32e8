"""``--help`` of every command fits the terminal and names values, never typer's ``<type>`` placeholders."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from dxpulse.cli.help import reflow
from dxpulse.cli.main import app

WIDTH = 80
PLACEHOLDER = re.compile(r"<[a-z_]+(\[[^\]]*\])?>|\|\s*$")
"""typer's type column: ``<str>``, ``<bool>``, ``<list[str]>``, ``<file>``."""


def command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from command_paths(sub, (*path, name))


COMMANDS = list(command_paths(typer.main.get_command(app)))


def test_every_command_is_listed() -> None:
    assert ("token", "create") in COMMANDS
    assert ("stack", "status") in COMMANDS
    assert len(COMMANDS) > 20


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "dxpulse")
def test_help_fits_80_columns_without_type_placeholders(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH), "TERMINAL_WIDTH": None})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert not too_wide, "\n".join(too_wide)
    placeholders = [line for line in lines if PLACEHOLDER.search(line)]
    assert not placeholders, "\n".join(placeholders)
    assert "…" not in result.output  # a value cut off by the width


def test_docstring_paragraphs_become_one_line_each() -> None:
    text = """First line
    goes on.

    Second paragraph
    continues here.
    - an item
    - another
    """
    assert reflow(text) == ("First line goes on.\n\nSecond paragraph continues here.\n- an item\n- another")


@given(st.lists(st.text(alphabet="abc ", min_size=1, max_size=20), min_size=1, max_size=8))
def test_reflow_keeps_every_word_in_order(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert (reflow(text) or "").split() == text.split()


def test_no_command_help_keeps_the_line_breaks_of_its_docstring() -> None:
    def helps(command: Any, path: str) -> Iterator[tuple[str, str]]:
        yield path, command.help or ""
        for name, sub in getattr(command, "commands", {}).items():
            yield from helps(sub, f"{path} {name}")

    ragged = [
        path
        for path, text in helps(typer.main.get_command(app), "dxpulse")
        if re.search(r"[^\n]\n(?!\n|- )", text)
    ]
    assert not ragged
