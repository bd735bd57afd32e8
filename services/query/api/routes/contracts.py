"""The subscribers' contract: the AsyncAPI document of every topic and the JSON Schemas it refers to."""

# No `from __future__ import annotations`: FastAPI reads the handlers' parameter types at run time.
from functools import cache
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from dxpulse.kafka.contract import ASYNCAPI_FILE, contract_documents
from services.query.api.problems import INVALID_IN_PATH, NOT_FOUND, NotFound

router = APIRouter()

PREFIX = "/v1/contracts"


class ContractFile(BaseModel):
    """One document of the contract and where it is served."""

    name: str
    url: str
    media_type: str


class Contracts(BaseModel):
    """The AsyncAPI document and the JSON Schemas beside it: its ``$ref`` paths resolve against its URL."""

    asyncapi: str
    files: list[ContractFile]


@cache
def _documents() -> dict[str, str]:
    return contract_documents()


def _media_type(name: str) -> str:
    return "application/json" if name == ASYNCAPI_FILE else "application/schema+json"


@router.get(PREFIX, response_model=Contracts)
async def contracts() -> Contracts:
    """Where the AsyncAPI document of the Kafka topics and the JSON Schemas of their events are."""
    files = [
        ContractFile(name=n, url=f"{PREFIX}/{n}", media_type=_media_type(n)) for n in sorted(_documents())
    ]
    return Contracts(asyncapi=f"{PREFIX}/{ASYNCAPI_FILE}", files=files)


@router.get(
    PREFIX + "/{name}",
    responses={
        200: {"content": {"application/json": {}, "application/schema+json": {}}},
        404: NOT_FOUND,
        422: INVALID_IN_PATH,
    },
)
async def contract(
    name: Annotated[
        str, Path(pattern=r"^[a-z0-9.-]{1,64}$", description="asyncapi.json or e.g. rollup.v1.schema.json.")
    ],
) -> Response:
    """One document of the contract, exactly as committed in schemas/json/."""
    text = _documents().get(name)
    if text is None:
        raise NotFound("name", f"no contract document {name!r}; GET {PREFIX} lists them")
    return Response(text, media_type=_media_type(name))
