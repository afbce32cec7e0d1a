"""The MCP Apps payment card, through the protocol and in a real host bridge.

The host is the official one: `AppBridge` of @modelcontextprotocol/ext-apps
(pinned in tools/), bundled for the browser with the pinned vite, running in
Chromium; its MCP side is the real Python client (advertising MCP Apps)
connected to the real server. The card is loaded the way hosts load it: a
sandboxed `srcdoc` iframe under a CSP built from the resource's `_meta.ui.csp`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from tests.npm import NODE_MODULES, npm_path_or_skip
from tests.page.conftest import PRICE, Store, serving, text_of
from tests.page.test_browser import ARTIFACTS, LAUNCH_ARGS, chromium_or_skip
from tests.page.test_states import axe_violations
from x402_mcp.core.challenge import META_HOSTED_URL, META_REQUEST_ID, REQUEST_ID_ARGUMENT
from x402_mcp.core.states import State
from x402_mcp.page.card import CARD_URI, META_CARD

pytestmark = pytest.mark.anyio

APPS = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})

HOST_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test host</title></head>
<body><h1>Test host</h1><div id="frame"></div>
<script type="module">
import { AppBridge, PostMessageTransport } from "./bridge.js";
window.__opened = [];
window.startCard = async (html, csp, toolInput, toolResult) => {
  const policy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
    + "connect-src " + (csp.connectDomains || []).join(" ");
  const iframe = document.createElement("iframe");
  iframe.setAttribute("sandbox", "allow-scripts");
  iframe.title = "Payment card";
  iframe.style.cssText = "width: 420px; height: 420px; border: 1px solid #ccc";
  const meta = '<meta http-equiv="Content-Security-Policy" content="' + policy + '">';
  iframe.srcdoc = html.replace("<head>", "<head>" + meta);
  document.getElementById("frame").appendChild(iframe);
  const bridge = new AppBridge(null, { name: "test-host", version: "1.0.0" },
    { openLinks: {}, serverTools: {}, logging: {} },
    { hostContext: { theme: "light" } });
  bridge.oncalltool = async (params) => await window.__hostCallTool(params);
  bridge.onopenlink = async ({ url }) => { window.__opened.push(url); return {}; };
  bridge.oninitialized = async () => {
    await bridge.sendToolInput({ arguments: toolInput });
    await bridge.sendToolResult(toolResult);
  };
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
};
window.hostReady = true;
</script></body></html>"""


@pytest.fixture(scope="module")
def bridge_bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The official AppBridge, bundled once for the browser by the pinned vite."""
    vite = npm_path_or_skip(".bin/vite", required_by="X402_REQUIRE_BROWSER")
    npm_path_or_skip("@modelcontextprotocol/ext-apps", required_by="X402_REQUIRE_BROWSER")
    work = tmp_path_factory.mktemp("bridge")
    (work / "node_modules").symlink_to(NODE_MODULES)
    (work / "entry.js").write_text(
        'export { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";\n'
    )
    (work / "vite.config.mjs").write_text(
        "export default { logLevel: 'warn', build: { lib: { entry: 'entry.js', formats: ['es'],"
        " fileName: () => 'bridge.js' }, outDir: 'out', emptyOutDir: true, minify: false } };\n"
    )
    subprocess.run([str(vite), "build"], cwd=work, check=True, capture_output=True, timeout=120)
    yield (work / "out" / "bridge.js").read_text()
    shutil.rmtree(work, ignore_errors=True)


async def test_paid_tools_name_the_card_and_apps_hosts_get_a_card_challenge(store: Store) -> None:
    async with Client(store.server, extensions=[APPS]) as apps_host, Client(store.server) as plain:
        listed = {tool.name: tool for tool in (await apps_host.list_tools()).tools}
        plain_listed = {tool.name: tool for tool in (await plain.list_tools()).tools}
        read = await apps_host.read_resource(CARD_URI)
        card = await apps_host.call_tool("answer", {"question": "q"})
        challenge = await plain.call_tool("answer", {"question": "q"})

    assert (listed["answer"].meta or {})["ui"] == {"resourceUri": CARD_URI}
    assert listed["answer"].output_schema is None  # a non-error challenge could never match it
    assert plain_listed["answer"].output_schema is not None
    content = read.contents[0]
    assert content.mime_type == APP_MIME_TYPE
    html = getattr(content, "text", "")
    assert "<script src" not in html and "http" not in html.split("<script>")[1].split("fetch(")[0]
    csp = (content.meta or {})["ui"]["csp"]
    page_origin = str((card.meta or {})[META_HOSTED_URL]).split("/pay/")[0]
    assert csp["connectDomains"] == [page_origin]

    # The Apps host: not an error (so the card is mounted), same words, the card's facts.
    assert not card.is_error and card.structured_content is None
    assert "Payment required: $0.05" in text_of(card)
    facts = (card.meta or {})[META_CARD]
    request_id = (card.meta or {})[META_REQUEST_ID]
    assert facts["price"] == "$0.05" and facts["tool"] == "answer"
    assert facts["retryArguments"] == {REQUEST_ID_ARGUMENT: request_id}
    # Every other client: exactly the usual challenge.
    assert challenge.is_error and META_CARD not in (challenge.meta or {})
    assert challenge.structured_content is None  # this tool has an outputSchema (fit_output_schema)
    assert store.runs == {}


@pytest.mark.browser
async def test_the_card_in_the_official_host_bridge_pays_and_runs_the_tool(
    store: Store, bridge_bundle: str
) -> None:
    from playwright.async_api import async_playwright
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    async def host_page(request: Any) -> HTMLResponse:
        return HTMLResponse(HOST_PAGE)

    async def bridge_js(request: Any) -> Response:
        return Response(bridge_bundle, media_type="text/javascript")

    host_app = Starlette(routes=[Route("/", host_page), Route("/bridge.js", bridge_js)])
    before = store.payee_balance()
    executable = chromium_or_skip()
    async with (
        Client(store.server, extensions=[APPS]) as client,
        serving(host_app) as host,
        async_playwright() as driver,
    ):
        results: list[dict[str, Any]] = []

        async def call_tool(params: dict[str, Any]) -> dict[str, Any]:
            result = await client.call_tool(params["name"], params.get("arguments") or {})
            results.append(result.model_dump(by_alias=True, exclude_none=True, mode="json"))
            return results[-1]

        await client.list_tools()
        resource = (await client.read_resource(CARD_URI)).contents[0]
        arguments = {"question": "what is x402?"}
        challenge = await client.call_tool("answer", arguments)
        request_id, hosted = link_of_card(challenge)

        browser = await driver.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 520, "height": 560})
            await context.expose_function("__hostCallTool", call_tool)
            page = await context.new_page()
            await page.goto(host)
            await page.wait_for_function("() => window.hostReady === true")
            await page.evaluate(
                "([html, csp, input, result]) => window.startCard(html, csp, input, result)",
                [
                    getattr(resource, "text", ""),
                    (resource.meta or {})["ui"]["csp"],
                    arguments,
                    challenge.model_dump(by_alias=True, exclude_none=True, mode="json"),
                ],
            )
            card = page.frame_locator("iframe")
            await card.locator("main[data-state='challenge']").wait_for(timeout=15_000)
            assert await card.locator("#price").text_content() == "$0.05"
            assert (await card.locator("#countdown").text_content() or "").startswith("in ")
            ARTIFACTS.mkdir(exist_ok=True)
            await card.locator("main").screenshot(path=str(ARTIFACTS / "card-challenge.png"))
            frame = page.frames[1]
            for scheme in ("light", "dark"):
                await page.emulate_media(color_scheme=scheme)
                assert await axe_violations(frame) == [], scheme
            await page.emulate_media(color_scheme="light")

            await card.locator("#pay").click()
            await card.locator("main[data-state='waiting-payment']").wait_for(timeout=15_000)
            assert await page.evaluate("() => window.__opened") == [hosted]
            await card.locator("main").screenshot(path=str(ARTIFACTS / "card-waiting.png"))

            # The payer, in the page the host opened, pays with the demo wallet.
            payer = await context.new_page()
            await payer.goto(hosted)
            await payer.click("#demo-pay")
            await payer.wait_for_selector("main[data-state='paid']", timeout=15_000)

            # The card notices by itself, runs the tool through the host, and shows it ran.
            await card.locator("main[data-state='ran']").wait_for(timeout=20_000)
            assert await card.locator("#output").text_content() == "answer to what is x402?"
            assert "ran" in (await card.locator("#status-text").text_content() or "")
            await card.locator("main").screenshot(path=str(ARTIFACTS / "card-ran.png"))
            assert await axe_violations(frame) == []
            # A host also shows the card beside the paid result itself: it says it is done.
            html, csp = getattr(resource, "text", ""), (resource.meta or {})["ui"]["csp"]
            await page.evaluate(
                "([html, csp, input, result]) => window.startCard(html, csp, input, result)",
                [html, csp, arguments, results[-1]],
            )
            second = page.frame_locator("iframe").nth(1)
            await second.locator("main[data-state='answered']").wait_for(timeout=15_000)
            assert await second.locator("#status-text").text_content() == "Done"
            await payer.reload()
            assert await payer.locator("#status-text").text_content() == "Already used"
        finally:
            await browser.close()

    assert store.runs == {"answer": 1}
    assert store.payee_balance() == before + PRICE
    request = await store.ledger.get(request_id)
    assert request is not None and request.state is State.CONSUMED


def link_of_card(result: Any) -> tuple[str, str]:
    assert not result.is_error, text_of(result)
    meta = result.meta or {}
    assert json.dumps(meta[META_CARD])
    return str(meta[META_REQUEST_ID]), str(meta[META_HOSTED_URL])
