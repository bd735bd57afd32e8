"""The catalog and registry a process runs with: the files its settings name, read once and validated."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import NamedTuple

from dxpulse.domain.catalog import Catalog, read_catalog
from dxpulse.domain.datafile import DataError
from dxpulse.domain.registry import Registry, load_registry
from dxpulse.settings import BusinessDataSettings


class BusinessData(NamedTuple):
    """The indicator catalog and the reporter registry."""

    catalog: Catalog
    registry: Registry


def read_business_data(catalog: Path | None = None, registry: Path | None = None) -> BusinessData:
    """The catalog file and registry folder at these paths (the packaged ones for None), checked
    against each other: every group an indicator names is the registry's.

    A ``DataError`` lists the problems of both, each naming its file, line and field."""
    try:
        reporters = load_registry(registry)
    except DataError as error:
        try:
            read_catalog(catalog)
        except DataError as also:
            raise DataError([*error.problems, *also.problems]) from None
        raise
    return BusinessData(read_catalog(catalog, groups=reporters.groups), reporters)


_read_once = cache(read_business_data)
"""Per process, each pair of paths is read once: every app of a process shares its data."""


def business_data(
    settings: BusinessDataSettings, catalog: Catalog | None = None, registry: Registry | None = None
) -> BusinessData:
    """What a service runs with: ``catalog`` and ``registry`` where given (tests and benchmarks
    bring their own), else the files ``settings`` name (DXPULSE_CATALOG_PATH, DXPULSE_REGISTRY_PATH)."""
    if catalog is not None and registry is not None:
        return BusinessData(catalog, registry)
    read = _read_once(settings.catalog_path, settings.registry_path)
    return BusinessData(catalog or read.catalog, registry or read.registry)


def business_data_or_exit(settings: BusinessDataSettings, process: str) -> BusinessData:
    """``business_data`` for a process that starts: a wrong file ends it with one line per problem
    (the file, line and field), not a traceback."""
    try:
        return business_data(settings)
    except DataError as error:
        raise SystemExit("\n".join(f"{process} refuses to start: {p}" for p in error.problems)) from None
