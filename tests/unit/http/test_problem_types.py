"""Every problem type the code answers is in PROBLEM_TYPES, with its status, and has its section in
docs/reference/problems.md; the page documents no other."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from dxpulse.http.problem_types import HTTP_ERROR, PROBLEM_TYPES
from services.ingest.problems import status_of

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "reference" / "problems.md"
SECTION = re.compile(r"^## `([a-z-]+)`\n\n(\d{3}|Any other 4xx or 5xx status),", re.MULTILINE)


def _callee(node: ast.Call) -> str:
    function = node.func
    return function.id if isinstance(function, ast.Name) else getattr(function, "attr", "")


def _literal(node: ast.expr) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def used_problem_types(source: str) -> set[tuple[str, int]]:
    """(slug, status) of every refusal ``source`` makes: ``problem(status, "slug", ...)``, or
    ``Problem("slug", ...)`` (a report's problem, answered with the ingest's status for the slug)."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name, first = _callee(node), _literal(node.args[0])
        if name == "Problem" and isinstance(first, str):
            found.add((first, status_of(first)))
        elif name == "problem" and len(node.args) > 1 and isinstance(first, int):
            slug = _literal(node.args[1])
            if isinstance(slug, str):
                found.add((slug, first))
    return found


def _code_problem_types() -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for folder in ("dxpulse", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= used_problem_types(path.read_text(encoding="utf-8"))
    return found


def test_every_problem_the_code_answers_is_a_known_type_with_its_status() -> None:
    used = _code_problem_types()
    known = {(slug, kind.status) for slug, kind in PROBLEM_TYPES.items()}
    assert used - known == set(), "answered but not in dxpulse.http.problem_types"
    assert {slug for slug, _ in known} - {slug for slug, _ in used} == set(), "known but never answered"


def test_the_scan_finds_both_ways_of_refusing() -> None:
    source = (
        'Problem("retired-reporter", "t", "d")\n'
        'problem(404, "not-found", "Not found", detail)\n'
        "problem(status, HTTP_ERROR, phrase, detail)\n"
        'problems.problem_response(Problem("rate-limited", "t", "d"))\n'
    )
    assert used_problem_types(source) == {
        ("retired-reporter", 422),
        ("not-found", 404),
        ("rate-limited", 429),
    }


def test_the_page_has_a_section_for_exactly_the_known_types_with_their_status() -> None:
    sections = SECTION.findall(PAGE.read_text(encoding="utf-8"))
    documented = {slug: status for slug, status in sections}
    assert len(documented) == len(sections), "a slug has two sections"
    expected = {slug: str(kind.status) for slug, kind in PROBLEM_TYPES.items()}
    expected[HTTP_ERROR] = "Any other 4xx or 5xx status"
    assert documented == expected
