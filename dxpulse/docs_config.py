"""The configuration reference (docs/reference/configuration.md), generated from the Settings classes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import annotated_types
import typer
import typer.main
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from dxpulse.cli.main import app as cli_app
from dxpulse.settings import (
    BusinessDataSettings,
    CommonSettings,
    KafkaSecuritySettings,
    ServiceSettings,
    WorkerSettings,
)
from dxpulse.stack.settings import StackSettings
from services.aggregate.settings import AggregateSettings
from services.alerts.settings import AlertsSettings
from services.history.settings import HistorySettings
from services.ingest.settings import IngestSettings
from services.query.settings import QuerySettings

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "configuration.md"
"""Where the generated page is committed; tests/unit/test_docs.py checks it is up to date."""


@dataclass(frozen=True)
class Section:
    """One table of the page: the variables a Settings class adds to its bases."""

    title: str
    settings: type[BaseSettings]
    read_by: str


SECTIONS: tuple[Section, ...] = (
    Section("Connections", CommonSettings, "every service: ingest, query, aggregate, alerts and history"),
    Section(
        "Kafka security",
        KafkaSecuritySettings,
        "every service, and the `dxpulse` commands and benchmarks that read Kafka"
        " ([cluster operations](../operations/cluster.md#security))",
    ),
    Section(
        "Catalog and registry",
        BusinessDataSettings,
        "every service ([catalog and registry](../operations/business-data.md)); the `dxpulse` commands"
        " that read them take the same variables as options",
    ),
    Section("Process tuning", ServiceSettings, "every service"),
    Section("Every faust worker", WorkerSettings, "the faust workers: aggregate, alerts and history"),
    Section("Ingest", IngestSettings, "`python -m services.ingest`, with the first four tables above"),
    Section(
        "Query API",
        QuerySettings,
        "`python -m services.query`, with the first four tables above",
    ),
    Section(
        "Aggregator",
        AggregateSettings,
        "`python -m services.aggregate`, with the five shared tables above",
    ),
    Section(
        "Alerts",
        AlertsSettings,
        "`python -m services.alerts`, with the five shared tables above",
    ),
    Section(
        "History writer",
        HistorySettings,
        "`python -m services.history`, with the five shared tables above",
    ),
    Section("Local stack", StackSettings, "`dxpulse stack` and the defaults of the other commands"),
)
"""Every Settings class, most shared first."""

EXTRA_VARIABLES: tuple[tuple[str, str, str, str], ...] = (
    (
        "DXPULSE_HOSTILE_EXAMPLES",
        "int",
        "`6`",
        "Examples hypothesis tries per test in `tests/integration/test_hostile_inputs.py`; raise it"
        " for a longer search.",
    ),
    (
        "DXPULSE_TORTURE_ROUNDS",
        "int",
        "`3`",
        "Rounds of `tests/integration/test_rebalance_torture.py`, two rebalances each; 25 make the"
        " 50 of docs/design/faust-consumer.md.",
    ),
    (
        "DXPULSE_TEST_FAUST_RECOVERY_ORDER",
        "bool",
        "`0`",
        "`1` makes the worker of `tests/integration/test_rebalance_drop.py` end recovery in faust"
        " 0.15.3's own order, to show the drop it causes.",
    ),
    (
        "DXPULSE_TEST_ARTIFACTS",
        "path",
        "`tests/artifacts`",
        "Folder `tests/integration/test_scoreboard_browser.py` saves its screenshots in (under"
        " `scoreboard/`).",
    ),
)
"""Variables read outside Settings classes and command options: (name, type, default, description)."""


def env_name(settings: type[BaseSettings], field: str) -> str:
    """The environment variable a settings field is read from."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()


def own_fields(settings: type[BaseSettings]) -> Iterator[tuple[str, FieldInfo]]:
    """The fields ``settings`` declares itself, in declaration order (not those of its bases)."""
    declared = vars(settings).get("__annotations__", {})
    for name, info in settings.model_fields.items():
        if name in declared:
            yield name, info


def _bounds(metadata: Sequence[Any]) -> list[str]:
    """Constraints as ``>= 1``, ``< 10``, from pydantic's annotated-types metadata."""
    out: list[str] = []
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            out.append(f">= {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            out.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            out.append(f"<= {item.le:,}")
        elif isinstance(item, annotated_types.Lt):
            out.append(f"< {item.lt:,}")
    return out


def type_text(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """A field's type as a reader types it into an environment variable."""
    if get_origin(annotation) is Annotated:
        base, *extra = get_args(annotation)
        return type_text(base, [*metadata, *extra])
    args = get_args(annotation)
    if get_origin(annotation) is tuple and args:
        items = {type_text(arg) for arg in args}
        item = items.pop() if len(items) == 1 else "value"
        text = f"JSON list of {len(args)} {item}"
    elif type(None) in args:
        others = [arg for arg in args if arg is not type(None)]
        text = " or ".join(type_text(arg) for arg in others) + " (optional)"
    else:
        text = {str: "string", int: "int", float: "float", bool: "bool", Path: "path"}.get(
            annotation, getattr(annotation, "__name__", str(annotation))
        )
    bounds = _bounds(metadata)
    return f"{text}, {', '.join(bounds)}" if bounds else text


def default_text(info: FieldInfo) -> str:
    """A field's default as it would be written in the environment."""
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "(required)"
    else:
        value = info.default
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        home = str(Path.home())
        text = str(value)
        return f"`~{text[len(home) :]}`" if text.startswith(home + "/") else f"`{text}`"
    if isinstance(value, tuple):
        return f"`{json.dumps(list(value))}`"
    if value == "":
        return '`""` (empty)'
    return f"`{value}`"


def description_text(name: str, info: FieldInfo) -> str:
    """A field's description without the variable name it starts with; refuses one naming another."""
    text = (info.description or "").strip()
    head, sep, rest = text.partition(": ")
    if sep and head.startswith("DXPULSE_"):
        if head != name:
            raise ValueError(f"the description of {name} names {head}")
        text = rest
    return text[:1].upper() + text[1:]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(*cells: str) -> str:
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _module_path(settings: type[BaseSettings]) -> str:
    return settings.__module__.replace(".", "/") + ".py"


def settings_table(section: Section) -> list[str]:
    """One section of the page: its heading, who reads it, and a row per variable."""
    settings = section.settings
    lines = [
        f"## {section.title}",
        "",
        f"`{settings.__name__}` in `{_module_path(settings)}`, read by {section.read_by}.",
        "",
        "| variable | type | default | description |",
        "|---|---|---|---|",
    ]
    for field, info in own_fields(settings):
        name = env_name(settings, field)
        lines.append(
            _row(
                f"`{name}`",
                type_text(info.annotation, info.metadata),
                default_text(info),
                description_text(name, info),
            )
        )
    return [*lines, ""]


def _options(command: Any, path: str) -> Iterator[tuple[str, str, str, str]]:
    """(variable, option, command, help) of every option of ``command`` and its subcommands that
    takes its default from an environment variable."""
    for param in getattr(command, "params", []):
        envvars = getattr(param, "envvar", None)
        for envvar in [envvars] if isinstance(envvars, str) else list(envvars or []):
            yield envvar, "/".join(param.opts), path, getattr(param, "help", None) or ""
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _options(sub, f"{path} {name}")


def cli_table() -> list[str]:
    """The command-line options that environment variables set, one row per variable."""
    by_variable: dict[str, tuple[set[str], list[str], set[str]]] = {}
    for envvar, option, command, help_text in _options(typer.main.get_command(cli_app), "dxpulse"):
        options, commands, helps = by_variable.setdefault(envvar, (set(), [], set()))
        options.add(option)
        commands.append(command)
        helps.add(help_text)
    lines = [
        "## Command line",
        "",
        "Options of `dxpulse` commands that an environment variable sets when they are not given;"
        " without either, a command uses the local stack running in its folder, else the"
        " `DXPULSE_STACK_*` ports ([the `dxpulse` command](../guide/operators.md#the-dxpulse-command)).",
        "",
        "| variable | option | commands | description |",
        "|---|---|---|---|",
    ]
    for envvar, (options, commands, helps) in sorted(by_variable.items()):
        lines.append(
            _row(
                f"`{envvar}`",
                ", ".join(f"`{option}`" for option in sorted(options)),
                ", ".join(f"`{command}`" for command in commands),
                " / ".join(sorted(helps)),
            )
        )
    return [*lines, ""]


def extra_table() -> list[str]:
    """Variables read outside Settings classes and command options."""
    lines = [
        "## Test suite",
        "",
        "| variable | type | default | description |",
        "|---|---|---|---|",
    ]
    lines += [_row(f"`{name}`", kind, default, text) for name, kind, default, text in EXTRA_VARIABLES]
    return [*lines, ""]


def render() -> str:
    """The whole page."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m dxpulse.docs_config` from the Settings classes: edit those. -->",
        "",
        "Every dxpulse process reads its configuration from `DXPULSE_*` environment variables; each"
        " process also has built-in defaults that suit the local stack. A service reads the"
        " variables of its own table and of the shared tables it names. Booleans are `true` or"
        " `false`, lists are JSON, and relative paths are resolved against the working directory."
        " A value of the wrong type or out of range stops the process at start, naming the setting.",
        "",
    ]
    for section in SECTIONS:
        lines += settings_table(section)
    lines += cli_table()
    lines += extra_table()
    return "\n".join(lines).rstrip("\n") + "\n"


def variables() -> set[str]:
    """Every variable the page documents."""
    names = {env_name(s.settings, field) for s in SECTIONS for field, _ in own_fields(s.settings)}
    names |= {envvar for envvar, *_ in _options(typer.main.get_command(cli_app), "dxpulse")}
    return names | {name for name, *_ in EXTRA_VARIABLES}


def main(argv: Sequence[str] | None = None) -> None:
    """Write the page, or with ``--check`` exit 1 when the committed page differs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare with the committed page")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != page:
            raise SystemExit(f"{PAGE} is out of date: run python -m dxpulse.docs_config")
        return
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(page)


if __name__ == "__main__":
    main()
