"""Business data files for tests: a small catalog, registry copies and a made-up third list."""

from __future__ import annotations

import shutil
from datetime import date
from importlib import resources
from pathlib import Path

CATALOG = """\
indicators:
  - id: some_flag
    name: Some flag
    unit: share of units
    kind: flag
    period_type: half
    groups: [provinces]
    target: {value: 1.0, deadline: 2024-12-31}
"""
"""A catalog of one indicator; tests name its lines."""

MERGED_2027 = date(2027, 1, 1)
"""The made-up day Cao Bang (04) takes in Tuyen Quang (08), itself formed from Ha Giang (02) in 2025."""


def packaged_registry_copy(folder: Path) -> Path:
    """A copy of the packaged registry folder at ``folder``, to be changed by a test."""
    with resources.as_file(resources.files("dxpulse.data").joinpath("registry")) as source:
        shutil.copytree(source, folder)
    return folder


def edit(file: Path, old: str, new: str) -> None:
    """Replace the one ``old`` in ``file`` with ``new``."""
    text = file.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {file.name}"
    file.write_text(text.replace(old, new), encoding="utf-8")


def add_2027_provinces(folder: Path) -> None:
    """provinces_2027.csv: the 2025 list with 08 merged into 04, in force from 2027-01-01."""
    lines = (folder / "provinces_2025.csv").read_text(encoding="utf-8").splitlines()
    rows = [line.split(",") for line in lines[1:]]
    (folder / "provinces_2025.csv").write_text(
        f"{lines[0]},successor_2027\n"
        + "".join(
            f"{line},{'04' if row[0] == '08' else row[0]}\n"
            for line, row in zip(lines[1:], rows, strict=True)
        ),
        encoding="utf-8",
    )
    (folder / "provinces_2027.csv").write_text(
        "code,name_ascii,merged_from\n"
        + "".join(
            f"{row[0]},{row[2]},{'04;08' if row[0] == '04' else row[0]}\n" for row in rows if row[0] != "08"
        ),
        encoding="utf-8",
    )
    edit(
        folder / "versions.yaml",
        "    from: 2025-07-01\n",
        f"    from: 2025-07-01\n  - file: provinces_2027.csv\n    from: {MERGED_2027.isoformat()}\n",
    )
