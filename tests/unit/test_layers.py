"""The layers stay visible: the domain imports no I/O library, and faust's internals stay in one place."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_ALLOWED = {"pydantic", "yaml", "schemas"}
"""Third-party and first-party roots the domain may import besides the standard library and itself."""
IO_LIBRARIES = {
    "faust",
    "mode",
    "aiokafka",
    "asyncpg",
    "fastapi",
    "starlette",
    "httpx",
    "uvicorn",
    "prometheus_client",
}


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, as written (absolute; the project uses no relative imports)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def test_the_domain_imports_only_the_standard_library_pydantic_yaml_and_itself() -> None:
    wrong: dict[str, list[str]] = {}
    for path in _python_files("dxpulse/domain", "schemas"):
        for module in _imports(path):
            root = module.partition(".")[0]
            if root in sys.stdlib_module_names or root in DOMAIN_ALLOWED or root == "__future__":
                continue
            if module == "dxpulse.domain" or module.startswith("dxpulse.domain."):
                continue
            wrong.setdefault(str(path.relative_to(ROOT)), []).append(module)
    assert wrong == {}, f"the domain must not import I/O or outer layers: {wrong}"


def test_the_check_would_catch_an_io_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncpg\nfrom faust.types import Message\nfrom dxpulse.kafka import topics\n")
    assert _imports(sample) == {"asyncpg", "faust.types", "dxpulse.kafka"}


def test_no_io_library_is_loaded_by_importing_the_domain() -> None:

    modules = [
        f"dxpulse.domain.{path.stem}" for path in _python_files("dxpulse/domain") if path.stem != "__init__"
    ]
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + f"print(sorted({{m.partition('.')[0] for m in sys.modules}} & set({sorted(IO_LIBRARIES)!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    assert loaded.stdout.strip() == "[]"


def _functions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def _nested(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Functions defined anywhere inside ``function``'s body (lambdas aside)."""
    return sum(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for statement in function.body
        for node in ast.walk(statement)
    )


def test_services_are_named_classes_not_closures() -> None:
    closures = {
        f"{path.relative_to(ROOT)}:{function.name}": _nested(function)
        for path in _python_files("services")
        for function in _functions(path)
        if _nested(function) > 2
    }
    assert closures == {}, "a service's pieces are named classes, not functions sharing hidden state"


def test_create_app_is_short_wiring() -> None:
    long = {
        str(path.relative_to(ROOT)): (function.end_lineno or 0) - function.lineno + 1
        for path in _python_files("services")
        for function in _functions(path)
        if function.name == "create_app" and (function.end_lineno or 0) - function.lineno + 1 > 60
    }
    assert long == {}, "create_app wires named classes together in at most 60 lines"
