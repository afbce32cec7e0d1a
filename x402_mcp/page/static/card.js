// The payment card: an MCP App (io.modelcontextprotocol/ui) the host renders next to a
// paid tool's challenge. It speaks the Apps protocol (JSON-RPC 2.0 over postMessage to
// the host) by hand, so it loads no script from anywhere. It shows the price, opens the
// hosted payment page through the host (ui/open-link), follows the payment on the
// hosted URL's status, and once paid runs the tool through the host (tools/call) with
// payment_request_id. Everything shown is set with textContent.
"use strict";

(function () {
  const PROTOCOL = "2026-01-26";
  const POLL_MS = 3000;
  const byId = (id) => document.getElementById(id);
  const pending = new Map();
  let nextId = 1;
  let args = {};
  let card = null;      // the x402-mcp/card _meta of the challenge
  let state = "waiting";
  let running = false;
  let timer = null;

  // -- the Apps protocol ----------------------------------------------------------------------

  function post(message) {
    window.parent.postMessage({ jsonrpc: "2.0", ...message }, "*");
  }

  function request(method, params) {
    const id = nextId++;
    post({ id, method, params });
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  }

  function notify(method, params) {
    post({ method, params });
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;  // only the host speaks to the card
    const message = event.data;
    if (!message || message.jsonrpc !== "2.0") return;
    if (message.id !== undefined && !message.method) {
      const waiting = pending.get(message.id);
      if (!waiting) return;
      pending.delete(message.id);
      if (message.error) waiting.reject(new Error(message.error.message || "the host refused"));
      else waiting.resolve(message.result || {});
      return;
    }
    if (message.id !== undefined) {
      // Host requests (ping, ui/resource-teardown): nothing to keep, so answer at once.
      post({ id: message.id, result: {} });
      return;
    }
    const params = message.params || {};
    if (message.method === "ui/notifications/tool-input") args = params.arguments || {};
    else if (message.method === "ui/notifications/tool-result") challenge(params);
    else if (message.method === "ui/notifications/host-context-changed") theme(params);
  });

  function theme(context) {
    if (context && (context.theme === "dark" || context.theme === "light")) {
      document.documentElement.dataset.theme = context.theme;
    }
  }

  function resized() {
    const box = document.documentElement.getBoundingClientRect();
    notify("ui/notifications/size-changed", { width: Math.ceil(box.width), height: Math.ceil(box.height) });
  }

  // -- what the card says -------------------------------------------------------------------------

  const WORDS = {
    waiting: ["…", "Loading the payment request", "Nothing has been charged."],
    challenge: ["→", "Waiting for your payment", "Nothing has been charged yet. Pay opens the payment page in your browser."],
    "waiting-payment": ["…", "Waiting for your payment", "Finish in the page that opened; this card follows it by itself."],
    "link-refused": ["!", "The payment page did not open", "Nothing has been charged. Open this address in your browser: {url}"],
    unreachable: ["!", "Can't reach the payment server", "This card tries again by itself. If you have paid, press \"I have paid: run it\"."],
    paid: ["✓", "Paid", "Running {tool} now…"],
    ran: ["✓", "Paid, and {tool} ran", "It ran once, for this payment. Its answer is below."],
    used: ["✓", "Already used", "This payment's call of {tool} has already run. To run it again, ask for it again."],
    expired: ["⏱", "Expired", "Nothing was charged. Ask for {tool} again for a new price."],
    failed: ["✕", "{tool} did not run", "{reason}"],
    answered: ["✓", "Done", "This call ran; its answer is in the chat. Nothing more will be charged for it."],
  };

  function show(key, values) {
    values = { tool: card ? card.tool : "the tool", ...(values || {}) };
    const fill = (text) => text.replace(/\{(\w+)\}/g, (_, name) => values[name] || "");
    const [icon, title, detail] = WORDS[key];
    state = key;
    document.querySelector("main").dataset.state = key;
    byId("status-icon").textContent = icon;
    byId("status-text").textContent = fill(title);
    byId("status-detail").textContent = fill(detail);
    const payable = ["challenge", "link-refused", "waiting-payment", "unreachable"].includes(key);
    byId("pay").hidden = !payable;
    // Closed the page by mistake? It can be opened again.
    byId("pay").textContent = key === "challenge" ? "Pay in your browser" : "Open the payment page again";
    byId("pay").className = key === "challenge" ? "primary" : "secondary";
    byId("check").hidden = !["waiting-payment", "unreachable", "link-refused"].includes(key);
    byId("countdown-line").hidden = !["challenge", "waiting-payment", "unreachable", "link-refused"].includes(key);
    resized();
  }

  function textOf(result) {
    const parts = (result.content || []).filter((block) => block && block.type === "text").map((block) => block.text);
    const text = parts.join("\n");
    return text.length > 2000 ? text.slice(0, 2000) + "…" : text;
  }

  // -- the challenge, the payment, the run -----------------------------------------------------

  function challenge(result) {
    const meta = result._meta || {};
    if (!meta["x402-mcp/card"]) return settledElsewhere(result, meta);
    card = meta["x402-mcp/card"];
    byId("price").textContent = card.price;
    byId("what").textContent = "for " + card.description;
    show("challenge");
    tick();
  }

  // The host shows the card beside every result of a paid tool, not only its challenge.
  function settledElsewhere(result, meta) {
    const receipt = meta["x402/payment-response"];
    byId("price").textContent = "";
    if (result.isError) {
      byId("what").textContent = "Not run";
      return show("failed", { reason: textOf(result) || "The server gave no reason." });
    }
    byId("what").textContent = receipt ? "Paid call" : "Call";
    show("answered");
  }

  async function pay() {
    try {
      const answer = await request("ui/open-link", { url: card.hostedUrl });
      if (answer && answer.isError) return show("link-refused", { url: card.hostedUrl });
    } catch (_) {
      return show("link-refused", { url: card.hostedUrl });
    }
    show("waiting-payment");
    follow();
  }

  function follow() {
    if (timer === null) timer = setInterval(check, POLL_MS);
    check();
  }

  // The hosted URL answers an x402 client: 402 unpaid, 200 paid, 410 used or expired.
  async function check() {
    if (!card || running || ["ran", "used", "expired", "failed"].includes(state)) return;
    let response;
    let body = {};
    try {
      response = await fetch(card.hostedUrl, { headers: { Accept: "application/json" }, credentials: "omit" });
      body = await response.json();
    } catch (_) {
      return show("unreachable");
    }
    if (response.status === 402) {
      if (state === "unreachable") show("waiting-payment");
      return;
    }
    if (response.status === 200) return run();
    if (response.status === 410 && body.state === "consumed") return finish("used");
    if (response.status === 410) return finish("expired");
  }

  function finish(key, values) {
    clearInterval(timer);
    show(key, values);
    byId("status-title").focus();
  }

  async function run() {
    if (running) return;
    running = true;
    show("paid");
    try {
      const result = await request("tools/call", { name: card.tool, arguments: { ...args, ...card.retryArguments } });
      const meta = result._meta || {};
      if (meta["x402-mcp/card"] || result.isError) {
        // Not paid yet after all (or refused): the gate said why.
        running = false;
        if (meta["x402-mcp/card"]) return show("waiting-payment");
        return finish("failed", { reason: textOf(result) || "The server gave no reason." });
      }
      byId("output").textContent = textOf(result);
      byId("output").hidden = false;
      finish("ran");
    } catch (error) {
      running = false;
      finish("failed", { reason: "The host could not run it: " + String(error && error.message || error).slice(0, 300) });
    }
  }

  function tick() {
    if (!card || !card.expiresAt) return;
    const left = Math.floor(card.expiresAt - Date.now() / 1000);
    if (left <= 0) {
      byId("countdown").textContent = "now";
      if (["challenge", "waiting-payment", "unreachable", "link-refused"].includes(state)) check();
      return;
    }
    byId("countdown").textContent = "in " + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
  }

  byId("pay").addEventListener("click", pay);
  byId("check").addEventListener("click", run);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") check(); });
  window.addEventListener("focus", check);
  setInterval(tick, 1000);

  request("ui/initialize", {
    protocolVersion: PROTOCOL,
    appInfo: { name: "x402-mcp payment card", version: "1" },
    appCapabilities: {},
  }).then((answer) => {
    theme(answer.hostContext);
    notify("ui/notifications/initialized", {});
    resized();
  });
})();
