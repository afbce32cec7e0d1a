"""A client that declares URL elicitation gets the link offered, and the challenge on time.

The person may take long to answer the offer, or the host may never answer it; the
challenge must still arrive well before clients give up on the call (the TypeScript
SDK after 60 s).
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.types import ElicitRequestParams, ElicitRequestURLParams, ElicitResult, ErrorData

from servers import mathlab
from tests.clients.conftest import served
from tests.page.conftest import link_of
from x402_mcp.chains.devchain import DevChain
from x402_mcp.gate import ELICITATION_WAIT_SECONDS

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("answer_after", [0.0, 30.0, None], ids=["prompt", "late", "never"])
async def test_an_elicitation_answer_never_holds_the_challenge(
    devchain: DevChain, tmp_path: Path, answer_after: float | None
) -> None:
    offered: list[ElicitRequestURLParams] = []

    async def person(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult | ErrorData:
        assert isinstance(params, ElicitRequestURLParams)
        offered.append(params)
        if answer_after is None:
            await anyio.sleep_forever()
        await anyio.sleep(answer_after)
        return ElicitResult(action="accept")

    async with (
        served(mathlab.build, devchain, tmp_path) as sample,
        Client(sample.url, mode="legacy", elicitation_callback=person) as client,
    ):
        started = time.monotonic()
        with anyio.fail_after(20):
            challenge = await client.call_tool("factorize", {"n": 360})
        elapsed = time.monotonic() - started
        # The same session goes on working after the abandoned offer.
        free = await client.call_tool("is_prime", {"n": 97})

    request_id, hosted = link_of(challenge)
    assert [(each.url, each.elicitation_id) for each in offered] == [(hosted, request_id)]
    assert "Pay $0.02 for a prime factorization" in offered[0].message
    assert ELICITATION_WAIT_SECONDS <= 10
    if answer_after == 0:
        assert elapsed < ELICITATION_WAIT_SECONDS  # a prompt answer is not waited out
    else:
        assert ELICITATION_WAIT_SECONDS - 0.5 <= elapsed < ELICITATION_WAIT_SECONDS + 5
    assert not free.is_error
