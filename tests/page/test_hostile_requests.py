"""The page under hostile HTTP, on every port it is served from: stalled bodies, a forged
`Host` on a slash redirect, and JSON numbers Python cannot (or should not) read."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator

import anyio
import pytest

from tests.page.conftest import Store, connected, http, link_of, serving
from x402_mcp.page import bodies, httpguard

pytestmark = pytest.mark.anyio
DEADLINE = 1.0


@contextlib.asynccontextmanager
async def page_base(store: Store, port: str) -> AsyncIterator[tuple[str, str]]:
    """(base URL, request id) of the page on `port`: the stdio side port, or mounted in the
    author's streamable-HTTP app."""
    if port == "side":
        async with connected(store) as client:
            request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
            yield url.split("/pay/")[0], request_id
        return
    async with serving(store.server.streamable_http_app()) as base, connected(store) as client:
        request_id, _ = link_of(await client.call_tool("answer", {"question": "q"}))
        yield base, request_id


def raw_exchange(base: str, request: bytes, *, wait: float) -> tuple[bytes, float]:
    """Send `request` on a raw socket, then stall; return what the server sent and when it
    closed (seconds), reading for at most `wait` seconds."""
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
        return answer, time.monotonic() - started


PORTS = ["side", "mounted"]


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("action", ["authorization", "demo", ""])
async def test_a_stalled_body_gets_408_and_the_connection_closed(
    store: Store, port: str, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bodies, "BODY_DEADLINE_SECONDS", DEADLINE)
    async with page_base(store, port) as (base, request_id):
        path = f"/pay/{request_id}/{action}".rstrip("/")
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Accept: application/json\r\nContent-Length: 200\r\n\r\n"
        ).encode()
        answer, took = await anyio.to_thread.run_sync(
            lambda: raw_exchange(base, head + b'{"from": "0x', wait=DEADLINE + 8)
        )
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"did not arrive within 1 seconds" in answer
    # Answered after the deadline, and the connection closed soon after (not held).
    assert DEADLINE - 0.1 <= took < DEADLINE + 5


@pytest.mark.parametrize("port", PORTS)
async def test_a_body_that_arrives_in_time_is_read(store: Store, port: str) -> None:
    async with page_base(store, port) as (base, request_id), http() as web:
        answer = await web.post(
            f"{base}/pay/{request_id}/authorization",
            json={"from": store.payer.address},
            headers={"Accept": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["authorization"]["from"] == store.payer.address


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("host", ["evil.example", "attacker.example:443", "127.0.0.1:6666"])
async def test_a_slash_redirect_is_relative_whatever_the_host(store: Store, port: str, host: str) -> None:
    async with page_base(store, port) as (base, request_id), http() as web:
        answer = await web.get(f"{base}/pay/{request_id}/", headers={"Host": host, "Accept": "text/html"})
        followed = await web.get(
            f"{base}/pay/{request_id}/", headers={"Accept": "text/html"}, follow_redirects=True
        )
    assert answer.status_code == 308
    location = answer.headers["location"]
    assert location == f"../{request_id}"
    assert host.split(":")[0] not in location
    assert followed.status_code == 200 and str(followed.url) == f"{base}/pay/{request_id}"


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize(
    "path", ["/pay/pr_not-an-id/", "/pay/%2F%2Fevil.example/", "/pay//evil.example/", "/pay/x/authorization/"]
)
async def test_other_slashed_paths_are_not_redirected(store: Store, port: str, path: str) -> None:
    async with page_base(store, port) as (base, _), http() as web:
        answer = await web.get(
            f"{base}{path}", headers={"Host": "evil.example", "Accept": "application/json"}
        )
    assert answer.status_code in (404, 405), (answer.status_code, answer.headers)
    assert "location" not in answer.headers


BAD_JSON = [
    (b'{"from": 1' + b"0" * 5000 + b"}", "integer of 5001 digits"),
    (b'{"from": -' + b"9" * 5000 + b"}", "integer of 5000 digits"),
    (b'{"from": 1e99999}', "too large"),
    (b'{"from": NaN}', "NaN"),
    (b'{"from": -Infinity}', "-Infinity"),
    (b'{"from": "\xff"}', "not UTF-8"),
    (b'{"from": ', "not valid JSON"),
]


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize(("body", "says"), BAD_JSON)
async def test_json_numbers_python_cannot_read_get_400(
    store: Store, port: str, body: bytes, says: str
) -> None:
    async with page_base(store, port) as (base, request_id), http() as web:
        answers = [
            await web.post(
                f"{base}/pay/{request_id}/{action}",
                content=body,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
            for action in ("authorization", "demo")
        ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert says in answer.json()["error"]


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("value", ["1" * 5000, "9" * 79, "1" + "0" * 5000, "1e5000", "-1"])
async def test_a_huge_number_string_in_a_wallet_payment_gets_400(store: Store, port: str, value: str) -> None:
    authorization = {
        "from": store.payer.address,
        "to": store.payee,
        "value": value,
        "validAfter": value,
        "validBefore": value,
        "nonce": "0x" + "11" * 32,
    }
    body = json.dumps({"signature": "0x" + "22" * 65, "authorization": authorization})
    async with page_base(store, port) as (base, request_id), http() as web:
        answer = await web.post(
            f"{base}/pay/{request_id}",
            content=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
    assert answer.status_code == 400, answer.text
    assert "invalid" in answer.json()["error"]
    assert store.runs == {}


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("where", ["body", "header"])
async def test_deep_nesting_gets_400_not_a_crash(store: Store, port: str, where: str) -> None:
    """py-evm raises the recursion limit to 100,000, so the C decoder would overflow the stack
    (a segfault of the whole server) on 16 KiB of brackets: nesting is counted first."""
    deep = "[" * 7000 + "]" * 7000
    async with page_base(store, port) as (base, request_id), http() as web:
        if where == "body":
            answer = await web.post(
                f"{base}/pay/{request_id}/authorization",
                content=f'{{"from": {deep}}}',
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
        else:
            answer = await web.get(
                f"{base}/pay/{request_id}", headers={"PAYMENT-SIGNATURE": f'{{"x": {deep}}}'}
            )
        alive = await web.get(f"{base}/pay/{request_id}", headers={"Accept": "text/html"})
    assert answer.status_code == 400, answer.text
    assert "nests more than 64 levels deep" in answer.json()["error"]
    assert alive.status_code == 200


def test_the_parser_keeps_ordinary_json() -> None:
    text = b'{"a": [1, -2, 2.5, "x", null, true, "[[[[{{"], "b": ' + b"9" * 4300 + b"}"
    assert bodies.parse_json_body(text) == {"a": [1, -2, 2.5, "x", None, True, "[[[[{{"], "b": 10**4300 - 1}
    nested = b"[" * 64 + b"]" * 64
    assert bodies.parse_json_body(nested) is not None
    with pytest.raises(bodies.BadJson, match="nests more than 64"):
        bodies.parse_json_body(b"[" + nested + b"]")


def drip(base: str, pieces: list[bytes], every: float, wait: float) -> tuple[bytes, float]:
    """Send `pieces` one by one, `every` seconds apart, as a slowloris does; return what came
    back and when the server closed the connection (or `wait` passed)."""
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    answer = b""
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(every)
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass
        return answer, time.monotonic() - started


@pytest.mark.parametrize(
    "pieces",
    [
        [b"GET /pay/x HTTP/1.1\r\n", b"Host: a\r\n"],  # a head that never ends
        [b"G", b"E", b"T", b" ", b"/"] * 4,  # one byte at a time, forever
        [],  # connects and says nothing
    ],
    ids=["partial-head", "drip", "silent"],
)
async def test_the_side_port_closes_a_connection_whose_head_never_arrives(
    store: Store, pieces: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(httpguard, "HEAD_DEADLINE_SECONDS", DEADLINE)
    async with page_base(store, "side") as (base, _):
        answer, took = await anyio.to_thread.run_sync(lambda: drip(base, pieces, 0.2, DEADLINE + 8))
        async with http() as web:  # and the page still serves everyone else
            alive = await web.get(f"{base}/pay/_static/page.css")
    assert answer == b"" and took < DEADLINE + 3, (answer, took)
    assert alive.status_code in (200, 404)


async def test_the_side_port_keeps_a_connection_that_asks_in_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(httpguard, "HEAD_DEADLINE_SECONDS", DEADLINE)
    async with page_base(store, "side") as (base, request_id), http() as web:
        answers = []
        for _ in range(3):  # one keep-alive connection, well within the deadline each time
            answers.append(await web.get(f"{base}/pay/{request_id}", headers={"Accept": "text/html"}))
            await anyio.sleep(DEADLINE / 3)
    assert [answer.status_code for answer in answers] == [200, 200, 200]
