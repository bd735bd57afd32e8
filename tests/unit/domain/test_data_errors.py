"""A wrong catalog or registry file is refused with one line per problem: its file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from dxpulse.domain.catalog import read_catalog
from dxpulse.domain.datafile import DataError
from dxpulse.domain.registry import load_registry
from tests.unit.domain.data_files import CATALOG, add_2027_provinces, edit, packaged_registry_copy


def _catalog_problems(tmp_path: Path, text: str, groups: tuple[str, ...] | None = None) -> list[str]:
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as refused:
        read_catalog(path, groups)
    assert str(refused.value) == "\n".join(str(p) for p in refused.value.problems)
    return [str(problem).removeprefix(f"{tmp_path}/") for problem in refused.value.problems]


def test_the_sample_catalog_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    assert read_catalog(path, groups=("provinces",))["some_flag"].groups == ("provinces",)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "value: 1.0",
            "value: abc",
            "catalog.yaml line 8, indicators[0].target.value: Input should be a valid number, unable to"
            " parse string as a number (got 'abc')",
        ),
        (
            "value: 1.0",
            "value: 0",
            "catalog.yaml line 8, indicators[0].target.value: Input should be greater than 0 (got 0)",
        ),
        (
            "kind: flag",
            "kind: average",
            "catalog.yaml line 5, indicators[0].kind: Input should be 'flag', 'ratio', 'count' or"
            " 'catalog' (got 'average')",
        ),
        ("    unit: share of units\n", "", "catalog.yaml line 2, indicators[0].unit: Field required"),
        (
            "    kind: flag\n",
            "    kind: flag\n    colour: red\n",
            "catalog.yaml line 6, indicators[0].colour: Extra inputs are not permitted (got 'red')",
        ),
        (
            "    kind: flag\n",
            "    kind: flag\n    kind: ratio\n",
            "catalog.yaml line 6, indicators[0].kind: given twice",
        ),
        (
            "kind: flag",
            "kind: catalog",
            "catalog.yaml line 2, indicators[0]: catalog indicator some_flag needs its list of items",
        ),
        (
            "2024-12-31",
            "2024-02-30",
            "catalog.yaml line 8: '2024-02-30' is not a date: day is out of range for month",
        ),
        (
            "groups: [provinces]",
            "groups: [provinces",
            "catalog.yaml line 8: while parsing a flow sequence, expected ',' or ']', but got ':'",
        ),
    ],
)
def test_a_wrong_catalog_names_the_line_and_field(tmp_path: Path, old: str, new: str, problem: str) -> None:
    assert _catalog_problems(tmp_path, CATALOG.replace(old, new)) == [problem]


def test_an_indicator_id_listed_twice_is_named(tmp_path: Path) -> None:
    twice = CATALOG + CATALOG.removeprefix("indicators:\n")
    assert _catalog_problems(tmp_path, twice) == [
        "catalog.yaml line 1, indicators: indicator ids listed twice: some_flag"
    ]


def test_every_problem_of_a_catalog_is_listed(tmp_path: Path) -> None:
    text = CATALOG.replace("kind: flag", "kind: average").replace("value: 1.0", "value: abc")
    assert [problem.split(",")[0] for problem in _catalog_problems(tmp_path, text)] == [
        "catalog.yaml line 5",
        "catalog.yaml line 8",
    ]


def test_a_group_the_registry_lacks_is_named(tmp_path: Path) -> None:
    assert _catalog_problems(tmp_path, CATALOG, groups=("national",)) == [
        "catalog.yaml line 7, indicators[0].groups[0]: no group 'provinces' in the registry"
    ]


def test_a_catalog_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing\.yaml: cannot be read: No such file or directory"):
        read_catalog(tmp_path / "nothing.yaml")
    (tmp_path / "latin1.yaml").write_bytes("indicators: [café]".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.yaml: not UTF-8 text"):
        read_catalog(tmp_path / "latin1.yaml")


# --- the registry folder: a copy of the packaged one with one edit --------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return packaged_registry_copy(tmp_path / "registry")


def _registry_problems(folder: Path) -> list[str]:
    with pytest.raises(DataError) as refused:
        load_registry(folder)
    return [str(problem).removeprefix(f"{folder}/") for problem in refused.value.problems]


def test_the_copy_loads(folder: Path) -> None:
    assert len(load_registry(folder).reporters) == 90


@pytest.mark.parametrize(
    ("file", "old", "new", "problem"),
    [
        (
            "provinces_2025.csv",
            "20,Lạng Sơn,Lang Son,province,20",
            "7x,Lạng Sơn,Lang Son,province,20",
            "provinces_2025.csv line 7, column code: '7x' is not a two-digit code",
        ),
        (
            "provinces_2025.csv",
            "12,Lai Châu,Lai Chau,province,12",
            "11,Lai Châu,Lai Chau,province,11",
            "provinces_2025.csv line 5, column code: '11' is listed twice (line 4)",
        ),
        (
            "provinces_2025.csv",
            "12,Lai Châu,Lai Chau,province,12",
            "12,Lai Châu,Lai Chau,province",
            "provinces_2025.csv line 5: 4 fields where the header has 5 columns",
        ),
        (
            "provinces_2025.csv",
            "code,name_vi,name_ascii,type,merged_from",
            "code,name_vi,name_ascii,type,merged",
            "provinces_2025.csv line 1, column merged_from: missing from the header",
        ),
        (
            "provinces_2025.csv",
            "12,Lai Châu,Lai Chau,province,12",
            "12,Lai Châu,,province,12",
            "provinces_2025.csv line 5, column name_ascii: empty",
        ),
        (
            "provinces_2025.csv",
            "56;58",
            "56;58;99",
            "provinces_2025.csv line 25, column merged_from: '99' is not on provinces_2024.csv",
        ),
        (
            "provinces_2025.csv",
            "56;58",
            "56",
            "provinces_2024.csv line 39, column successor_2025: '56' on provinces_2025.csv does not"
            " list '58' in merged_from",
        ),
        (
            "provinces_2024.csv",
            "58,Ninh Thuận,Ninh Thuan,province,BTB-DHMT,56",
            "58,Ninh Thuận,Ninh Thuan,province,BTB-DHMT,99",
            "provinces_2024.csv line 39, column successor_2025: '99' is not on provinces_2025.csv",
        ),
        (
            "provinces_2024.csv",
            "58,Ninh Thuận,Ninh Thuan,province,BTB-DHMT,56",
            "58,Ninh Thuận,Ninh Thuan,province,BTB-DHMT,",
            "provinces_2024.csv line 39, column successor_2025: empty: name the unit of"
            " provinces_2025.csv that takes over",
        ),
        (
            "provinces_2024.csv",
            "56,Khánh Hòa,Khanh Hoa,province,BTB-DHMT,56",
            "56,Khánh Hòa,Khanh Hoa,province,BTB-DHMT,01",
            "provinces_2024.csv line 38, column successor_2025: '56' goes on in provinces_2025.csv, so"
            " it succeeds itself",
        ),
        (
            "national.csv",
            ",2025-02-28,MOST",
            ",2025-02-30,MOST",
            "national.csv line 2, column valid_to: '2025-02-30' is not a date (YYYY-MM-DD)",
        ),
        (
            "national.csv",
            ",2025-02-28,MOST",
            ",2025-02-28,MOT",
            "national.csv line 2, column successor: 'MOT' is not on national.csv",
        ),
        (
            "national.csv",
            "2025-03-01,,",
            "2025-03-01,2025-01-01,",
            "national.csv line 3, column valid_to: 2025-01-01 is before valid_from (2025-03-01)",
        ),
        (
            "versions.yaml",
            "    from: 2025-07-01\n",
            "",
            "versions.yaml line 11, provinces[1]: no `from`: when does this list come into force?",
        ),
        (
            "versions.yaml",
            "2025-07-01",
            "2025-07-32",
            "versions.yaml line 12: '2025-07-32' is not a date: day is out of range for month",
        ),
        (
            "versions.yaml",
            "  - file: ministries_2025.csv\n    from: 2025-03-01\n",
            "  - file: ministries_2025.csv\n    from: 2025-03-01\n  - file: ministries_2026.csv\n"
            "    from: 2025-03-01\n",
            "versions.yaml line 18, ministries[2].from: 2025-03-01 is not after 2025-03-01, when"
            " ministries_2025.csv comes into force",
        ),
        (
            "versions.yaml",
            "  - file: ministries_2024.csv",
            "  - file: ministry_2024.csv",
            "versions.yaml line 14, ministries[0].file: not named ministries_<label>.csv",
        ),
        (
            "versions.yaml",
            "  - file: ministries_2024.csv",
            "  - file: ../ministries_2024.csv",
            "versions.yaml line 14, ministries[0].file: String should match pattern '^[\\w.-]+\\.csv$'"
            " (got '../ministries_2024.csv')",
        ),
        (
            "versions.yaml",
            "    from: 2025-07-01\n",
            "    from: 2025-07-01\n    to: 2026-01-01\n",
            "versions.yaml line 13, provinces[1].to: Extra inputs are not permitted (got 2026-01-01)",
        ),
        (
            "groups.yaml",
            "kinds: [province]",
            "kinds: [provnce]",
            "groups.yaml line 11, groups.provinces.kinds[0]: Input should be 'province', 'ministry' or"
            " 'national' (got 'provnce')",
        ),
        (
            "groups.yaml",
            "exclude: [GO]",
            "exclude: [GX]",
            "groups.yaml line 16, groups.ministries_with_procedures.exclude[0]: no ministry has the"
            " code 'GX'",
        ),
    ],
)
def test_a_wrong_registry_file_names_the_line_and_column(
    folder: Path, file: str, old: str, new: str, problem: str
) -> None:
    edit(folder / file, old, new)
    assert problem in _registry_problems(folder)


def test_a_list_versions_yaml_names_must_exist(folder: Path) -> None:
    edit(folder / "versions.yaml", "provinces_2025.csv", "provinces_2026.csv")
    problems = _registry_problems(folder)
    assert f"versions.yaml line 11, provinces[1].file: no such file in {folder}" in problems
    assert "provinces_2025.csv: not named in versions.yaml, so never read" in problems


def test_a_list_versions_yaml_does_not_name_is_refused(folder: Path) -> None:
    (folder / "provinces_2027.csv").write_text("code,name_ascii,merged_from\n", encoding="utf-8")
    assert _registry_problems(folder) == ["provinces_2027.csv: not named in versions.yaml, so never read"]


def test_a_code_that_left_cannot_come_back(folder: Path) -> None:
    add_2027_provinces(folder)
    with (folder / "provinces_2027.csv").open("a", encoding="utf-8") as provinces:
        provinces.write("02,Ha Giang,08\n")
    assert _registry_problems(folder) == [
        "provinces_2027.csv line 35, column code: '02' left after provinces_2024.csv: a unit that"
        " comes back needs a new code",
    ]


def test_a_missing_folder_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(DataError) as refused:
        load_registry(tmp_path / "nowhere")
    assert str(refused.value) == f"{tmp_path / 'nowhere'}: no such folder"


def test_problems_in_several_files_are_all_listed(folder: Path) -> None:
    edit(folder / "national.csv", ",2025-02-28,MOST", ",2025-02-30,MOST")
    edit(folder / "ministries_2025.csv", "GO,", "go,")
    edit(folder / "groups.yaml", "kinds: [province]", "kinds: []")
    assert sorted({problem.partition(" ")[0] for problem in _registry_problems(folder)}) == [
        "groups.yaml",
        "ministries_2024.csv",  # its GO names a successor ministries_2025.csv lacks
        "ministries_2025.csv",
        "national.csv",
    ]
