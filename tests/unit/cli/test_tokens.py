"""``dxpulse token create --from-file``: the file is read and checked before PostgreSQL is touched."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dxpulse.cli.ingest import reporters_of
from dxpulse.cli.main import app
from dxpulse.stack.testing import free_ports


def closed_database() -> list[str]:
    """A DSN nothing answers: reached only when the reporters were all fine."""
    return ["--database-url", f"postgresql://dxpulse:x@127.0.0.1:{free_ports(1)[0]}/dxpulse"]


def test_a_reporters_file_is_one_id_a_line_with_comments() -> None:
    text = "# vendor A\nprovince:79\n\n  province:01  # Ha Noi\nnational:*\n"
    assert reporters_of(text) == [(2, "province:79"), (4, "province:01"), (5, "national:*")]


def test_unknown_reporters_are_listed_with_their_lines_and_nothing_is_created(tmp_path: Path) -> None:
    reporters = tmp_path / "reporters.txt"
    reporters.write_text("province:79\nprovince:99\nministry:NOPE\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["token", "create", "--from-file", str(reporters), *closed_database()])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {reporters}:2: 'province:99' is not a reporter in the registry")
    assert lines[1].startswith(f"error: {reporters}:3: 'ministry:NOPE' is not a reporter")
    assert result.stdout == ""


def test_one_reporter_or_a_file_not_both_nor_neither(tmp_path: Path) -> None:
    reporters = tmp_path / "reporters.txt"
    reporters.write_text("province:79\n", encoding="utf-8")
    for args in (["province:79", "--from-file", str(reporters)], []):
        result = CliRunner().invoke(app, ["token", "create", *args, *closed_database()])
        assert result.exit_code == 2, result.output
        assert "give one reporter, or --from-file" in result.stderr
    (tmp_path / "empty.txt").write_text("# nobody\n", encoding="utf-8")
    empty = CliRunner().invoke(app, ["token", "create", "--from-file", str(tmp_path / "empty.txt")])
    assert empty.exit_code == 2
    assert "names no reporter" in empty.stderr
