"""The documentation: the site builds strictly and offline, the pages are current and name real code."""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field, NonNegativeInt
from pydantic_settings import BaseSettings, SettingsConfigDict

from dxpulse import docs_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted([*DOCS.rglob("*.md"), README, ROOT / "BENCHMARKS.md"])
"""Every page a reader may open; CHANGELOG.md is history by design and is left out."""

CODE = ("dxpulse", "services", "bench", "schemas", "examples", "scripts", "tests", "deploy")
CODE_FILES = ("docker-compose.yml", "Dockerfile")

HISTORY_WORDING = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"\bsessions? \d",
        r"\brounds? \d",
        r"\bitems? \d",
        r"\bissues? \d",
        r"\bno longer\b",
        r"\bpreviously\b",
        r"\bwas\b",
        r"\bnow\b",
        r"\bused to\b",
        r"\bas before\b",
        r"\bbefore this (?:change|version|release)\b",
        r"\b(?:until|since) (?:session|round|item|issue|commit|version|this|then|now|recently)\b",
    )
)
"""Wording that tells the story of the code rather than what it does: the docs are in the present."""


def _source_files() -> list[Path]:
    files = [path for folder in CODE for path in (ROOT / folder).rglob("*") if path.is_file()]
    files += [ROOT / name for name in CODE_FILES]
    # This file names sample variables of its own.
    here = Path(__file__).resolve()
    return [
        path for path in files if "__pycache__" not in path.parts and path.suffix != ".pyc" and path != here
    ]


def test_the_site_builds_strictly_and_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # mkdocs-material's notice about its successor
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    pages = list(site.rglob("*.html"))
    assert len(pages) >= len(list(DOCS.rglob("*.md")))
    for page in pages:
        html = page.read_text()
        remote = re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]*\"", html)
        assert not remote, f"{page.relative_to(site)} loads {remote}"


def test_readme_is_short() -> None:
    assert len(README.read_text().splitlines()) <= 150


def test_benchmarks_hold_the_method_and_the_latest_figures_only() -> None:
    text = (ROOT / "BENCHMARKS.md").read_text()
    assert len(text.splitlines()) <= 250
    # The latest full run, the peers and the replay included.
    assert text.count("| scenario | figure |") == 1


def _prose(text: str) -> list[str]:
    """The lines of a Markdown page with code blocks and code spans blanked (code, sample output)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else re.sub(r"`[^`]*`", "``", line))
    return lines


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_pages_describe_the_present(page: Path) -> None:
    found = [
        f"line {number}: {match.group(0)!r}"
        for number, line in enumerate(_prose(page.read_text()), start=1)
        for pattern in HISTORY_WORDING
        if (match := pattern.search(line))
    ]
    assert not found, f"history wording in {page.relative_to(ROOT)}: {found}"


def test_the_configuration_reference_is_generated_from_the_settings() -> None:
    assert docs_config.PAGE.read_text() == docs_config.render(), "run python -m dxpulse.docs_config"


def test_every_variable_the_code_reads_is_in_the_configuration_reference() -> None:
    named = {
        name
        for path in _source_files()
        for name in re.findall(r"\bDXPULSE_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="replace"))
    }
    # Prefixes alone (DXPULSE_, DXPULSE_STACK_) end with "_" and are not matched.
    assert named, "no DXPULSE_* variable found: are the source folders still where CODE says?"
    missing = named - docs_config.variables()
    assert not missing, f"not in docs/reference/configuration.md: {sorted(missing)}"
    page = docs_config.PAGE.read_text()
    assert all(f"`{name}`" in page for name in docs_config.variables())


def test_the_reference_renders_types_defaults_and_descriptions_as_typed() -> None:
    class Sample(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="DXPULSE_SAMPLE_")

        pair: tuple[NonNegativeInt, NonNegativeInt] = Field(
            default=(1, 2), description="DXPULSE_SAMPLE_PAIR: a."
        )
        where: Path | None = Field(default=None, description="where it is.")
        cache: Path = Field(default_factory=lambda: Path.home() / ".cache", description="")
        size: int = Field(default=5, ge=1, le=10_000, description="DXPULSE_OTHER: names another.")

    fields = Sample.model_fields
    assert docs_config.env_name(Sample, "pair") == "DXPULSE_SAMPLE_PAIR"
    assert docs_config.type_text(fields["pair"].annotation) == "JSON list of 2 int, >= 0"
    assert docs_config.default_text(fields["pair"]) == "`[1, 2]`"
    assert docs_config.description_text("DXPULSE_SAMPLE_PAIR", fields["pair"]) == "A."
    assert docs_config.type_text(fields["where"].annotation) == "path (optional)"
    assert docs_config.default_text(fields["where"]) == "(unset)"
    assert docs_config.description_text("DXPULSE_SAMPLE_WHERE", fields["where"]) == "Where it is."
    assert docs_config.default_text(fields["cache"]) == "`~/.cache`"
    assert docs_config.type_text(fields["size"].annotation, fields["size"].metadata) == "int, >= 1, <= 10,000"
    with pytest.raises(ValueError, match="names DXPULSE_OTHER"):
        docs_config.description_text("DXPULSE_SAMPLE_SIZE", fields["size"])


def test_every_settings_class_has_a_section() -> None:
    classes = set()
    for folder in ("dxpulse", "services", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                    isinstance(base, ast.Name) and base.id.endswith("Settings") for base in node.bases
                ):
                    classes.add(node.name)
    assert classes == {section.settings.__name__ for section in docs_config.SECTIONS}


MODULE = r"(?:dxpulse|services|schemas)(?:\.[a-z_]\w*)+(?<!\.v\d)(?<!\.yml)(?<!\.yaml)(?<!\.json)"
"""A dotted name in dxpulse's packages, not a topic (``dxpulse.rollups.v1``) or a file name."""


def _code_spans(page: Path) -> list[str]:
    return re.findall(r"`([^`\n]+)`", page.read_text())


GENERATED_DIRS = tuple(
    line.strip().rstrip("/")
    for line in (ROOT / ".gitignore").read_text().splitlines()
    if "/" in line.strip()[:-1]
)
"""Folders the tests and tools write into (``tests/artifacts``): a page may name them before they exist."""


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_pages_point_at_code_that_exists(page: Path) -> None:
    missing = []
    for span in _code_spans(page):
        if span.rstrip("/").startswith(GENERATED_DIRS):
            continue
        if re.fullmatch(r"(?:dxpulse|services|schemas|bench|tests|deploy|examples|scripts)/[\w./*-]*", span):
            if not (list(ROOT.glob(span)) if "*" in span else (ROOT / span).exists()):
                missing.append(span)
        elif re.fullmatch(MODULE, span) and not _resolves(span):
            missing.append(span)
    assert not missing, f"{page.relative_to(ROOT)} names code that does not exist: {missing}"


EXTERNAL_NAMES = frozenset({"send_changelog", "DeserializationExceptionHandler", "faust_", "pg_dump"})
"""Names the pages use that belong to faust, Kafka Streams or PostgreSQL, not to dxpulse."""


def test_pages_name_symbols_the_code_has() -> None:
    """A code span that looks like a symbol (``FromStartConsumer._drain_messages``, ``writes_of``,
    ``ACCEPTED_LOOKUP``) names something in the code, so a rename cannot leave a page behind."""
    words = {
        word
        for path in _source_files()
        if path.suffix in {".py", ".sql", ".yaml", ".yml", ".json", ".toml", ""}
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", path.read_text(errors="replace"))
    }
    missing = {
        f"{page.relative_to(ROOT)}: {span}"
        for page in PAGES
        for span in _code_spans(page)
        if re.fullmatch(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*", span)
        and ("_" in span or re.match(r"[A-Z][a-z]+[A-Z]", span))
        and any(part not in words and part not in EXTERNAL_NAMES for part in span.split("."))
    }
    assert not missing, sorted(missing)


def test_symbols_are_where_the_pages_say() -> None:
    """A page that says "`MessageBatches` in `dxpulse/faust_engine/batches.py`" names a file that
    has that name, so code cannot move away from its page unnoticed."""
    placed = re.compile(r"`([A-Za-z_][\w.]*)`,? in\s+`([\w/.-]+\.py)`")
    pairs = [pair for page in PAGES for pair in placed.findall(page.read_text())]
    assert pairs
    misplaced = [
        f"{symbol} in {path}"
        for symbol, path in pairs
        if not (ROOT / path).exists()
        or not re.search(rf"\b{re.escape(symbol.split('.')[-1])}\b", (ROOT / path).read_text())
    ]
    assert not misplaced, misplaced


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or an attribute reached from the longest importable module."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


def test_readme_links_to_pages_that_exist() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if "://" not in link]
    assert local
    assert [link for link in local if not (ROOT / link).exists()] == []
