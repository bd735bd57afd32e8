"""Configuration of the query API, from DXPULSE_* environment variables."""

from __future__ import annotations

from pydantic import Field

from dxpulse.settings import ServiceSettings

LARGEST_PAGE = 10_000
"""No setting may make a page larger: a page is one JSON answer held in memory."""


class QuerySettings(ServiceSettings):
    """Where the query API listens, its page sizes and its database pool."""

    query_host: str = Field(
        default="127.0.0.1", description="DXPULSE_QUERY_HOST: address the query API binds to."
    )
    query_port: int = Field(default=8081, description="DXPULSE_QUERY_PORT: port of the query API.")
    query_page_size: int = Field(
        default=100,
        ge=1,
        le=LARGEST_PAGE,
        description="DXPULSE_QUERY_PAGE_SIZE: items per page when a request gives no limit.",
    )
    query_max_page_size: int = Field(
        default=500,
        ge=1,
        le=LARGEST_PAGE,
        description=(
            "DXPULSE_QUERY_MAX_PAGE_SIZE: the largest limit a request may ask for (422 above);"
            f" at most {LARGEST_PAGE:,}."
        ),
    )
    query_pool_size: int = Field(
        default=4, ge=1, description="DXPULSE_QUERY_POOL_SIZE: PostgreSQL connections at most."
    )
    query_statement_timeout_ms: int = Field(
        default=5000,
        ge=1,
        le=2**31 - 1,  # PostgreSQL's statement_timeout is an int4 of milliseconds
        description=(
            "DXPULSE_QUERY_STATEMENT_TIMEOUT_MS: PostgreSQL cancels a query running longer, so one"
            " expensive request cannot hold a connection."
        ),
    )
    query_public: bool = Field(
        default=False,
        description=(
            "DXPULSE_QUERY_PUBLIC: true lets anyone read the scoreboard (catalog, registry, rollups,"
            " unit figures, series, alerts, and the web pages) without a token; reporters' own values"
            " in the JSON API always need a read token (`dxpulse token create reader`). False: the"
            " web pages ask a browser to sign in with a read token."
        ),
    )
    query_cache_max_age_s: int = Field(
        default=30,
        ge=0,
        le=86_400,
        description=(
            "DXPULSE_QUERY_CACHE_MAX_AGE_S: how long a client or proxy may reuse an answer without"
            " asking again (Cache-Control max-age); after that it revalidates with If-None-Match."
        ),
    )
    query_body_read_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "DXPULSE_QUERY_BODY_READ_TIMEOUT_S: a request body must arrive whole within this long of"
            " the API starting to read it, or the request is answered 408 and its connection closed."
        ),
    )
    query_scoreboard_refresh_s: float = Field(
        default=5.0,
        ge=0,
        description=(
            "DXPULSE_QUERY_SCOREBOARD_REFRESH_S: how often an open scoreboard page asks whether new"
            " figures or alerts arrived, and redraws itself without a reload when they did; 0 never."
        ),
    )
