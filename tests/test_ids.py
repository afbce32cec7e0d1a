"""Payment request ids: minted with enough randomness, checked for shape."""

from __future__ import annotations

import pytest

from x402_mcp.core.ids import is_request_id, new_request_id


def test_minted_ids_have_the_checked_shape_and_differ() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(is_request_id(value) and len(value) == 27 for value in ids)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "pr_",
        "pr_short",
        "pr_" + "a" * 65,
        "pr_abcdefghijklmnop\x00",
        "pr_abcdefghijklmnoé",
        5,
        None,
        "PR_abcdefghijklmnopq",
        " pr_abcdefghijklmnopq",
    ],
)
def test_malformed_ids_are_refused(value: object) -> None:
    assert not is_request_id(value)
