"""Applying a batch while leaving out the items that make it raise (poison messages)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Isolated(Generic[T, R]):
    """What ``apply_isolating`` made of a batch: the result over the items kept, and those left out."""

    result: R | None
    kept: list[T]
    failed: list[tuple[T, Exception]] = field(default_factory=list)


def apply_isolating(items: Sequence[T], apply: Callable[[list[T]], R]) -> Isolated[T, R]:
    """``apply(items)``, or, when it raises, ``apply`` over the items that do not raise alone.

    ``apply`` must be pure (an item that raises changes nothing), as rolling up is. Each item is then
    tried alone, those that raise are left out with their error, and the rest are applied together;
    if they raise together although each passed alone, none is applied. This is Kafka Streams'
    ProcessingExceptionHandler answering CONTINUE, with the failed items dead-lettered by the caller.
    """
    batch = list(items)
    try:
        return Isolated(apply(batch), batch)
    except Exception as error:
        if len(batch) == 1:
            return Isolated(None, [], [(batch[0], error)])
    failed: list[tuple[T, Exception]] = []
    kept: list[T] = []
    for item in batch:
        try:
            apply([item])
        except Exception as error:
            failed.append((item, error))
        else:
            kept.append(item)
    if not kept:
        return Isolated(None, [], failed)
    try:
        return Isolated(apply(kept), kept, failed)
    except Exception as error:
        return Isolated(None, [], failed + [(item, error) for item in kept])
