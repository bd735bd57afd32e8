"""A batch with items that raise: the others are applied, the poison ones handed back with their error."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dxpulse.domain.poison import apply_isolating


def _sum_refusing_negatives(items: list[int]) -> int:
    if any(item < 0 for item in items):
        raise ValueError("negative")
    return sum(items)


def test_a_batch_without_poison_is_applied_once_whole() -> None:
    calls: list[list[int]] = []

    def apply(items: list[int]) -> int:
        calls.append(items)
        return sum(items)

    isolated = apply_isolating([1, 2, 3], apply)
    assert (isolated.result, isolated.kept, isolated.failed, calls) == (6, [1, 2, 3], [], [[1, 2, 3]])


@given(st.lists(st.integers(min_value=-3, max_value=5), min_size=1, max_size=20))
def test_poison_items_are_left_out_and_the_rest_applied(items: list[int]) -> None:
    isolated = apply_isolating(items, _sum_refusing_negatives)
    assert [item for item, _ in isolated.failed] == [item for item in items if item < 0]
    assert all(isinstance(error, ValueError) for _, error in isolated.failed)
    assert isolated.kept == [item for item in items if item >= 0]
    assert isolated.result == (sum(isolated.kept) if isolated.kept else None)


def test_items_that_fail_only_together_are_all_handed_back() -> None:
    def apply(items: list[int]) -> int:
        if len(items) > 1:
            raise OverflowError("together")
        return items[0]

    isolated = apply_isolating([1, 2], apply)
    assert isolated.result is None
    assert [item for item, _ in isolated.failed] == [1, 2]
