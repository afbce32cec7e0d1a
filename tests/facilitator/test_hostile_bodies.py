"""The facilitator server reads bodies with the page's one bounded reader and JSON parser:
a stalled body gets 408, and JSON the C decoder would crash on (or Python cannot read) a 400."""

from __future__ import annotations

import socket
import time

import anyio
import httpx2
import pytest

from tests.facilitator.conftest import TOKEN
from x402_mcp.page import bodies

pytestmark = pytest.mark.anyio
DEADLINE = 1.0


def stalled_post(base: str, path: str) -> tuple[bytes, float]:
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        'Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{"paymentPayload": '
    ).encode()
    started = time.monotonic()
    answer = b""
    with socket.create_connection((host, int(port)), timeout=DEADLINE + 8) as sock:
        sock.sendall(head)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
    return answer, time.monotonic() - started


@pytest.mark.parametrize("path", ["/verify", "/settle"])
async def test_a_stalled_body_gets_408(
    our_facilitator: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bodies, "BODY_DEADLINE_SECONDS", DEADLINE)
    answer, took = await anyio.to_thread.run_sync(lambda: stalled_post(our_facilitator, path))
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"did not arrive within 1 seconds" in answer
    assert took < DEADLINE + 5


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"paymentPayload": ' + "[" * 5000 + "]" * 5000 + "}", "nests more than 64 levels deep"),
        ('{"paymentPayload": 1' + "0" * 5000 + "}", "integer of 5001 digits"),
        ('{"paymentPayload": NaN}', "NaN"),
    ],
)
async def test_json_the_decoder_cannot_take_gets_400(our_facilitator: str, body: str, says: str) -> None:
    async with httpx2.AsyncClient(
        base_url=our_facilitator, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        answer = await http.post("/verify", content=body, headers={"Content-Type": "application/json"})
        alive = await http.get("/supported")
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["error"]
    assert alive.status_code == 200
