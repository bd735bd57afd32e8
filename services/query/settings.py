"""Configuration of the query API, from DXPULSE_* environment variables."""

from __future__ import annotations

from pydantic import Field

from dxpulse.settings import ServiceSettings


class QuerySettings(ServiceSettings):
    """Where the query API listens, its page sizes and its database pool."""

    query_host: str = Field(
        default="127.0.0.1", description="DXPULSE_QUERY_HOST: address the query API binds to."
    )
    query_port: int = Field(default=8081, description="DXPULSE_QUERY_PORT: port of the query API.")
    query_page_size: int = Field(
        default=100,
        ge=1,
        description="DXPULSE_QUERY_PAGE_SIZE: items per page when a request gives no limit.",
    )
    query_max_page_size: int = Field(
        default=500,
        ge=1,
        description="DXPULSE_QUERY_MAX_PAGE_SIZE: the largest limit a request may ask for (422 above).",
    )
    query_pool_size: int = Field(
        default=4, ge=1, description="DXPULSE_QUERY_POOL_SIZE: PostgreSQL connections at most."
    )
    query_statement_timeout_ms: int = Field(
        default=5000,
        ge=1,
        description=(
            "DXPULSE_QUERY_STATEMENT_TIMEOUT_MS: PostgreSQL cancels a query running longer, so one"
            " expensive request cannot hold a connection."
        ),
    )
