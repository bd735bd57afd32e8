"""Pydantic models of the events on dxpulse topics: reports, rollups, alerts and dead letters."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
"""The version of every event model here; a breaking change adds a new topic suffix."""

MAX_AMOUNT = 10**15
"""The largest count, numerator or denominator a report may carry.

No real figure comes near it: the largest national counts are in the hundreds of millions (citizens'
records, transactions per year), and 10^15 leaves six orders of magnitude above that. It keeps every
amount below 2^53, so whole amounts are exact as JSON numbers in any language, and keeps a sum over
even a million reporters (10^21) far inside a float's range, so no rollup can overflow.
"""

Amount = Annotated[float, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False, strict=True)]
"""A finite figure from 0 to ``MAX_AMOUNT``; a JSON number only (``"12"`` or ``true`` is refused, not
converted), as the JSON Schema says."""

REPORTER_PATTERN = r"^(province|ministry|national):[A-Za-z0-9_-]{1,32}$"


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Output(BaseModel):
    """An event dxpulse publishes: readers ignore fields added later (docs/design/schema-evolution.md)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def _kind_required(schema: dict[str, Any]) -> None:
    # The discriminator needs "kind" in every value sent; its default only serves values built in code.
    if "kind" not in schema.setdefault("required", []):
        schema["required"].insert(0, "kind")


class _Value(_Event):
    model_config = ConfigDict(json_schema_extra=_kind_required)


class FlagValue(_Value):
    """A yes/no fact, e.g. "our procedure system is connected to EMC"."""

    kind: Literal["flag"] = "flag"
    value: bool = Field(strict=True)


class RatioValue(_Value):
    """A part of a whole, e.g. 12,345 of 30,000 records filed online; rolled up as Σnum / Σden."""

    kind: Literal["ratio"] = "ratio"
    numerator: Amount
    denominator: Amount


class CountValue(_Value):
    """A quantity summed nationally, e.g. digital-technology enterprises registered."""

    kind: Literal["count"] = "count"
    value: Amount


class CatalogValue(_Value):
    """Which items of the indicator's fixed list are done, by item id."""

    kind: Literal["catalog"] = "catalog"
    done: list[Annotated[str, Field(strict=True, max_length=64)]] = Field(max_length=10_000)


ReportValue = Annotated[FlagValue | RatioValue | CountValue | CatalogValue, Field(discriminator="kind")]


def _not_boolean(value: Any) -> Any:
    # Python's True equals 1, so the literal alone would take a JSON true as version 1.
    if isinstance(value, bool):
        raise ValueError("schema_version must be the number 1")
    return value


def _text_only(value: Any) -> Any:
    # pydantic reads a number as Unix time; the schema says an RFC 3339 string, and a reporter
    # sending seconds, or milliseconds, most likely sent the wrong field.
    if isinstance(value, int | float):
        raise ValueError("observed_at must be an RFC 3339 date-time string such as 2024-06-30T10:00:00Z")
    return value


class Report(_Event):
    """One reporter's snapshot: as of ``observed_at``, its value for an indicator and period."""

    schema_version: Annotated[Literal[1], BeforeValidator(_not_boolean)] = Field(
        default=1, description="Event schema version; only 1 exists."
    )
    event_id: UUID = Field(description="Unique per report; a resend with the same id is a duplicate.")
    reporter: str = Field(
        pattern=REPORTER_PATTERN,
        description="Reporting unit, e.g. province:79, ministry:MIC, national:MPS.",
    )
    indicator: str = Field(min_length=1, max_length=64, description="Catalog indicator id.")
    period: str = Field(
        pattern=r"^[0-9]{4}(-(H[12]|Q[1-4]|0[1-9]|1[0-2]))?$",
        description="2024, 2024-H1, 2024-Q3 or 2024-07.",
    )
    observed_at: Annotated[AwareDatetime, BeforeValidator(_text_only)] = Field(
        description="When the value was true; the newest observation per reporter wins."
    )
    value: ReportValue


def _no_default(schema: dict[str, Any]) -> None:
    # A count missing from an older rollup is its list's length, not the model's placeholder 0.
    schema.pop("default", None)


ROLLUP_NAMES_LIMIT = 100
"""Most reporters a rollup's ``lagging`` and ``not_reported`` name. The national registry has 85
units, so its lists are never cut; a district-level one would republish ~40 KB of names with every
change (docs/design/rollups.md). The counts stay exact; the query API's reporting endpoint lists
everyone."""


class RollupTarget(_Output):
    """The target a rollup is compared with."""

    value: float
    deadline: date


class Rollup(_Output):
    """The national figure for one indicator, period and scope (a group, or ``national``)."""

    schema_version: Literal[1] = 1
    indicator: str
    period: str
    scope: str = Field(description="A group name (provinces, ministries, ...) or national.")
    kind: Literal["flag", "ratio", "count", "catalog"]
    value: float | None = Field(description="numerator/denominator, or the sum for counts.")
    numerator: float
    denominator: float | None
    reporters_reported: int
    reporters_expected: int
    completeness: float = Field(description="reporters_reported / reporters_expected.")
    target: RollupTarget | None
    attainment: float | None = Field(description="value / target value.")
    latest_observed_at: AwareDatetime | None
    report_count: int = Field(description="How many reporters' latest reports it rests on.")
    lagging: list[str] = Field(
        description=(
            "Expected reporters whose flag is false or who have not reported (flags only): the first"
            f" {ROLLUP_NAMES_LIMIT} by id; lagging_count says how many there are."
        )
    )
    not_reported: list[str] = Field(
        description=(
            f"Expected reporters with no report yet: the first {ROLLUP_NAMES_LIMIT} by id;"
            " not_reported_count says how many there are."
        )
    )
    lagging_count: int = Field(
        default=0,  # filled in from the list for older rollups (see below); never left to this
        ge=0,
        description=(
            "How many expected reporters are lagging (flags only);"
            f" lagging names at most {ROLLUP_NAMES_LIMIT}."
            " Absent from rollups published before it existed, whose lists named everyone: their length."
        ),
        json_schema_extra=_no_default,
    )
    not_reported_count: int = Field(
        default=0,
        ge=0,
        description=(
            f"How many expected reporters have not reported; not_reported names at most {ROLLUP_NAMES_LIMIT}."
            " Absent from rollups published before it existed, whose lists named everyone: their length."
        ),
        json_schema_extra=_no_default,
    )
    revision: str = Field(description="Content hash; equal revisions are the same figure.")
    computed_at: AwareDatetime

    @model_validator(mode="before")
    @classmethod
    def _counts_of_older_rollups(cls, data: Any) -> Any:
        # Rollups published before the counts existed named every reporter: a count is its list's length.
        if isinstance(data, dict):
            for names, count in (("lagging", "lagging_count"), ("not_reported", "not_reported_count")):
                if count not in data and isinstance(data.get(names), list):
                    data = {**data, count: len(data[names])}
        return data

    @property
    def key(self) -> str:
        return rollup_key(self.indicator, self.period, self.scope)

    @property
    def names_cut(self) -> bool:
        """Whether ``lagging`` or ``not_reported`` names fewer reporters than its count."""
        return len(self.lagging) < self.lagging_count or len(self.not_reported) < self.not_reported_count


def rollup_key(indicator: str, period: str, scope: str) -> str:
    """The rollup topic's message key: ``indicator|period|scope``."""
    return f"{indicator}|{period}|{scope}"


def report_key(indicator: str, period: str) -> str:
    """The report topic's message key: ``indicator|period``, so one worker owns each pair."""
    return f"{indicator}|{period}"


AlertStatus = Literal["firing", "resolved"]


class AlertEvent(_Output):
    """A transition of one alert, identified by its fingerprint (rule, indicator, period, scope)."""

    schema_version: Literal[1] = 1
    fingerprint: str
    transition_id: str | None = Field(
        default=None,
        description=(
            "fingerprint:episode:status, the same for a transition published twice (after a crash):"
            " keep the first event of each id. Absent on events published before ids existed."
        ),
    )
    rule: Literal["below_target", "off_trajectory", "regression", "missing_reports"]
    indicator: str
    period: str
    scope: str
    status: AlertStatus
    severity: Literal["critical", "warning", "info"]
    summary: str
    value: float | None
    target: float | None
    reporters: list[str] = Field(description="Reporters responsible, where the rule names them.")
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None
    changed_at: AwareDatetime


class DeadLetter(_Output):
    """A raw message the pipeline refused, kept with its reason and original bytes."""

    schema_version: Literal[1] = 1
    reason: str
    detail: str
    original: str = Field(
        description="The original message value, base64 encoded (its first bytes when original_truncated)."
    )
    original_key: str | None = Field(description="The original key as text (its first 1,024 bytes).")
    original_size: int | None = Field(
        default=None, ge=0, description="The original value's size in bytes. Absent on older letters."
    )
    original_sha256: str | None = Field(
        default=None, description="SHA-256 of the whole original value, hex. Absent on older letters."
    )
    original_truncated: bool = Field(
        default=False,
        description=(
            "The original did not fit Kafka's record size as base64: original holds its first bytes"
            " (or none); original_size and original_sha256 describe all of it."
        ),
    )
    source_topic: str
    source_partition: int
    source_offset: int
    failed_at: datetime
