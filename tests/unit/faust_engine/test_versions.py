"""A worker refuses to start on a faust-streaming or aiokafka other than the pinned one."""

from __future__ import annotations

import pytest

from dxpulse.faust_engine.versions import UnpinnedVersion, check_pinned_versions, pinned_versions

REQUIRES = ["faust-streaming==0.15.3", "aiokafka==0.14.0", "pydantic==2.14.3"]


def test_the_pins_are_read_from_dxpulse_own_requirements() -> None:
    assert pinned_versions(lambda name: REQUIRES) == {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}
    assert set(pinned_versions()) == {"faust-streaming", "aiokafka"}


def test_the_installed_versions_are_the_pinned_ones() -> None:
    check_pinned_versions()


def test_another_version_is_refused_naming_it_and_the_fix() -> None:
    versions = {"faust-streaming": "0.15.3", "aiokafka": "0.15.0"}
    with pytest.raises(
        UnpinnedVersion, match=r"aiokafka 0\.15\.0 is installed.*0\.14\.0.*requirements\.lock"
    ):
        check_pinned_versions(versions.__getitem__, lambda name: REQUIRES)


def test_requirements_without_an_exact_pin_are_refused() -> None:
    with pytest.raises(UnpinnedVersion, match="aiokafka"):
        check_pinned_versions(
            lambda name: "0.15.3", lambda name: ["faust-streaming==0.15.3", "aiokafka>=0.14"]
        )
