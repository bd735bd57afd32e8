"""``dxpulse check-data``: a catalog and registry checked before they are deployed; the commands' own."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dxpulse.business_data import BusinessData, read_business_data
from dxpulse.domain.datafile import DataError

CatalogPath = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        help="The indicator catalog, a YAML file (default: the packaged one).",
        envvar="DXPULSE_CATALOG_PATH",
        show_default=False,
    ),
]
RegistryPath = Annotated[
    Path | None,
    typer.Option(
        "--registry",
        help="The reporter registry, a folder (default: the packaged one).",
        envvar="DXPULSE_REGISTRY_PATH",
        show_default=False,
    ),
]


def check_data(
    catalog: CatalogPath = None,
    registry: RegistryPath = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Each problem as a JSON object (file, line, field, message).")
    ] = False,
) -> None:
    """Check a catalog file and a registry folder as the services do when they start.

    Prints one line per problem, naming its file, line and field, and exits 1 if there is any;
    otherwise one line counting what the files hold.
    """
    try:
        data = read_business_data(catalog, registry)
    except DataError as error:
        for problem in error.problems:
            print(json.dumps(asdict(problem)) if as_json else problem)
        raise typer.Exit(1) from None
    counts = {
        "indicators": len(data.catalog.indicators),
        "reporters": len(data.registry.reporters),
        "groups": len(data.registry.groups),
    }
    if as_json:
        print(json.dumps(counts))
    else:
        where = f"{catalog or 'the packaged catalog'} and {registry or 'the packaged registry'}"
        print(f"ok: {where}: " + ", ".join(f"{count} {name}" for name, count in counts.items()))


def command_data(catalog: Path | None, registry: Path | None) -> BusinessData:
    """The catalog and registry a command works with; a wrong file ends it with one line per problem
    (exit 2)."""
    try:
        return read_business_data(catalog, registry)
    except DataError as error:
        console = Console(stderr=True, highlight=False, soft_wrap=True)
        for problem in error.problems:
            console.print(f"[red]error:[/] {escape(str(problem))}")
        raise typer.Exit(2) from None
