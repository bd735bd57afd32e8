"""The faust-streaming and aiokafka versions this layer is written against, checked as a worker starts."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

CONFINED = ("faust-streaming", "aiokafka")
"""The packages whose internals ``dxpulse.faust_engine`` reaches into (docs/design/faust-consumer.md)."""


class UnpinnedVersion(RuntimeError):
    """An installed faust-streaming or aiokafka is not the version dxpulse pins."""


def pinned_versions(requires: Callable[[str], list[str] | None] = metadata.requires) -> dict[str, str]:
    """The exact versions dxpulse's own requirements pin (pyproject.toml), for ``CONFINED``."""
    pins = {}
    for requirement in requires("dxpulse") or []:
        name, separator, version = requirement.partition("==")
        if separator and name.strip() in CONFINED:
            pins[name.strip()] = version.split(";")[0].strip()
    return pins


def check_pinned_versions(
    installed: Callable[[str], str] = metadata.version,
    requires: Callable[[str], list[str] | None] = metadata.requires,
) -> None:
    """Raise ``UnpinnedVersion``, naming the package and the fix, when an installed version differs.

    The overrides in this package replace private methods of those exact versions; another version
    may run them against code they were not written for, silently.
    """
    pins = pinned_versions(requires)
    missing = [name for name in CONFINED if name not in pins]
    if missing:
        raise UnpinnedVersion(f"dxpulse's requirements pin no exact version of {', '.join(missing)}")
    for name, pinned in pins.items():
        found = installed(name)
        if found != pinned:
            raise UnpinnedVersion(
                f"{name} {found} is installed, but dxpulse's faust layer is written for {pinned}:"
                f" install the pinned versions (pip install --constraint requirements.lock -e .)"
            )
