"""How ``--help`` reads: docstrings wrapped to the terminal, and a value's name instead of its type."""

from __future__ import annotations

from typer import _click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


def reflow(text: str | None) -> str | None:
    """A docstring's paragraphs each on one line, so rich wraps them to the terminal's width.

    Lines of a paragraph are joined; a line starting with ``- `` starts a list item of its own.
    """
    if text is None:
        return None
    lines = [line.strip() for line in text.strip().splitlines()]
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if not line:
            paragraphs.append([])
        elif line.startswith("- ") and paragraphs[-1]:
            paragraphs[-1].append("\n" + line)
        else:
            paragraphs[-1].append(line)
    joined = (" ".join(words).replace(" \n", "\n") for words in paragraphs if words)
    return "\n\n".join(joined)


class NamedArgument(TyperArgument):
    """An argument whose help row shows its name and help, without typer's ``<type>`` column."""

    def display_type_rich(self, ctx: _click.Context) -> str | None:
        return None


class NamedOption(TyperOption):
    """An option whose help row shows its metavar (``DSN``, ``URL``), nothing for a flag, and
    otherwise its type as a word (``FLOAT``) or its choices (``csv|jsonl``), never ``<list[str]>``."""

    def display_type_rich(self, ctx: _click.Context) -> str | None:
        if self.is_flag:
            return None
        if self.metavar is not None:
            return self.metavar
        shown = (super().display_type_rich(ctx) or "").removeprefix("<").replace(">", "")
        return shown if self.type_descriptor.is_choice else shown.upper()


def _named(params: list[_click.Parameter]) -> list[_click.Parameter]:
    """``params`` with typer's argument and option classes replaced by the ones above."""
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = NamedArgument
        elif type(param) is TyperOption:
            param.__class__ = NamedOption
    return params


class HelpCommand(TyperCommand):
    """A command whose parameters show as NamedArgument and NamedOption do."""

    def get_params(self, ctx: _click.Context) -> list[_click.Parameter]:
        return _named(super().get_params(ctx))


class HelpGroup(TyperGroup):
    """A group whose parameters show as NamedArgument and NamedOption do."""

    def get_params(self, ctx: _click.Context) -> list[_click.Parameter]:
        return _named(super().get_params(ctx))


def plain_help(command: _click.Command) -> None:
    """Give ``command`` and everything under it the help of this module.

    typer builds its own classes for commands and parameters (the help option and the completion
    options only when help is shown) and has no setting for how their help shows, so the commands
    it built are given these subclasses, which change only their help.
    """
    command.help = reflow(command.help)
    if type(command) is TyperCommand:
        command.__class__ = HelpCommand
    elif type(command) is TyperGroup:
        command.__class__ = HelpGroup
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
