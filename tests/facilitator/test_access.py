"""Who may use our facilitator: the bearer token check and what counts as loopback."""

from __future__ import annotations

import pytest

from x402_mcp.facilitator.access import MIN_TOKEN_LENGTH, bearer_matches, is_loopback_host, token_problem

TOKEN = "t" * 20 + "-secret"


@pytest.mark.parametrize(
    "header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"  Bearer   {TOKEN} ", f"BEARER {TOKEN}"]
)
def test_the_token_is_accepted_as_a_bearer_credential(header: str) -> None:
    assert bearer_matches(header, TOKEN)


@pytest.mark.parametrize(
    "header",
    [None, "", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ",
     f"Bearer{TOKEN}", f"Bearer {TOKEN.upper()}", "Bearer \u202e" + TOKEN],
)  # fmt: skip
def test_anything_else_is_refused(header: str | None) -> None:
    assert not bearer_matches(header, TOKEN)


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("x" * (MIN_TOKEN_LENGTH - 1), "at least 16"),
        ("x" * 20 + " y", "without spaces"),
        ("x" * 20 + "é", "ASCII"),
    ],
)
def test_weak_or_unsendable_tokens_are_named_without_being_echoed(token: str, problem: str) -> None:
    message = token_problem(token)
    assert message is not None and problem in message and token not in message
    assert token_problem("x" * MIN_TOKEN_LENGTH) is None


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:8403", "127.8.9.10", "localhost", "LOCALHOST:80", "::1", "[::1]", "[::1]:8403"],
)
def test_loopback_names_and_addresses(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [None, "", "0.0.0.0", "::", "192.0.2.7", "evil.example", "evil.example:8403", "localhost.evil.example",
     "127.0.0.1.nip.io", "[::1", "127.0.0.1:80:80", "[2001:db8::1]:8403"],
)  # fmt: skip
def test_anything_that_can_name_another_machine_is_not_loopback(host: str | None) -> None:
    assert not is_loopback_host(host)
