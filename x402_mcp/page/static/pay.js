// The hosted payment page: pick an EIP-1193 wallet (EIP-6963 discovery, else
// window.ethereum), check the account's USDC balance, sign the EIP-3009
// authorization the server prepared, and hand the signature back to the server,
// which verifies and settles it. The page polls the request's status (the same
// URL, asked for JSON) so it follows a payment made anywhere else.
// Everything shown is set with textContent, so nothing a server or wallet
// returns is ever parsed as HTML.
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("request-data").textContent);
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 4000;
  // Where the request is final: nothing can change any more, so polling stops.
  const FINAL = new Set(["consumed", "expired", "unknown"]);
  // Where the request is paid: the actions are gone for good.
  const PAID = new Set(["paid", "paid-elsewhere", "settling", "consumed"]);
  let state = data.state;
  let busy = false;
  let paidHere = data.state === "paid";  // a reload of the page that paid keeps saying "Paid"
  const wallets = [];  // {name, icon, provider} from EIP-6963, in announce order
  let chosen = 0;

  // -- showing a state ------------------------------------------------------------------------

  function fill(text, values) {
    return text.replace(/\{(account|balance|reason)\}/g, (_, name) => values[name] || "");
  }

  function show(key, values) {
    values = values || {};
    const words = data.words[key];
    state = key;
    document.querySelector("main").dataset.state = key;
    $("status").className = "status status-" + key;
    $("status-icon").textContent = words.icon;
    $("status-text").textContent = words.title;
    $("status-money").textContent = fill(words.money, values);
    $("status-next").textContent = fill(words.next, values);
    $("footer").textContent = words.footer;
    document.title = words.title + " · " + data.priceUsd + " for " + data.tool;
    $("actions").hidden = PAID.has(key) || FINAL.has(key);
    if (PAID.has(key) || FINAL.has(key)) $("countdown").textContent = "—";
    technical(values.technical || "");
  }

  // A result the payer is waiting for: announce it and move focus to it.
  function conclude(key, values) {
    show(key, values);
    $("status-title").focus();
  }

  function technical(text) {
    $("error-label").hidden = !text;
    $("error-detail").hidden = !text;
    // What the wallet or server said, verbatim but bounded: a revert can be kilobytes long.
    $("error-detail").textContent = text.length > 300 ? text.slice(0, 300) + "…" : text;
  }

  function showReceipt(receipt) {
    if (!receipt) return;
    $("receipt-amount").textContent = receipt.tokens;
    $("receipt-payer").textContent = receipt.payer || "";
    $("receipt-time").textContent = receipt.paidAt ? new Date(receipt.paidAt * 1000).toLocaleString() : "";
    const cell = $("receipt-tx");
    cell.textContent = "";
    if (receipt.txHash) {
      const link = document.createElement(receipt.txUrl ? "a" : "span");
      link.id = "tx-link";
      link.className = "mono";
      link.textContent = receipt.txHash;
      if (receipt.txUrl) {
        link.href = receipt.txUrl;
        link.rel = "noopener noreferrer";
        link.target = "_blank";
      }
      cell.appendChild(link);
    }
    $("receipt").hidden = false;
  }

  function showFact(id, text) {
    $(id).textContent = text;
    $(id).hidden = false;
    $(id + "-label").hidden = false;
  }

  // -- progress steps: told by text and icon, not colour alone ----------------------------------

  function step(text) {
    const progress = $("progress");
    progress.hidden = false;
    const item = document.createElement("li");
    const mark = document.createElement("span");
    mark.className = "icon";
    mark.textContent = "…";
    const label = document.createElement("span");
    label.textContent = " " + text;
    item.append(mark, label);
    progress.appendChild(item);
    const end = (cls, icon, said) => {
      item.className = cls;
      mark.textContent = icon;
      label.textContent = " " + text + " " + said;
    };
    return { done() { end("done", "✓", "(done)"); }, failed() { end("failed", "✕", "(stopped)"); } };
  }

  function clearSteps() {
    $("progress").textContent = "";
    $("progress").hidden = true;
  }

  function setBusy(on) {
    busy = on;
    for (const button of document.querySelectorAll("#actions button, #wallet-list input")) {
      button.disabled = on;
    }
  }

  // -- the server ------------------------------------------------------------------------------

  class ServerError extends Error {
    constructor(message, status, reason) {
      super(message);
      this.status = status;
      this.reason = reason;
    }
  }

  async function postJson(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify(body),
        credentials: "omit",
      });
    } catch (error) {
      throw new ServerError("the request did not reach the server (" + error.message + ")", 0);
    }
    let answer = {};
    try {
      answer = await response.json();
    } catch (_) {
      answer = { error: "the server answered " + response.status + " without details" };
    }
    if (!response.ok) throw new ServerError(answer.error || "the server answered " + response.status, response.status, answer.reason);
    return answer;
  }

  // The request's status, from the same URL an x402 client reads (402 / 200 / 410 / 404).
  async function poll() {
    if (busy || FINAL.has(state)) return;
    let response;
    let body = {};
    try {
      response = await fetch(data.endpoints.pay, { headers: { "Accept": "application/json" }, credentials: "omit" });
      body = await response.json();
    } catch (error) {
      if (!busy) show("unreachable", { technical: String(error && error.message || error) });
      return;
    }
    if (busy) return;
    if (response.status === 402) {
      if (state === "unreachable" || state === "issued") show("issued");
      return;
    }
    if (response.status === 404) return conclude("unknown");
    const key = body.state === "paid" && !paidHere ? "paid-elsewhere" : body.state;
    if (!data.words[key] || key === state) return;
    if (body.receipt) showReceipt(body.receipt);
    conclude(key);
  }

  // -- the wallet ------------------------------------------------------------------------------

  // EIP-1193 / JSON-RPC error codes, in the payer's words (with what to do next).
  const WALLET_ERRORS = {
    4001: ["rejected", ""],
    4100: ["wallet-error", "Your wallet has not let this page use your account. Unlock your wallet, allow this site, and press Pay again."],
    4200: ["wallet-error", "Your wallet cannot sign this kind of payment. Try another wallet, such as MetaMask, Coinbase Wallet or Rabby."],
    4900: ["wallet-error", "Your wallet is not connected to any network. Check its connection and press Pay again."],
    4901: ["wrong-chain", ""],
    4902: ["wrong-chain", ""],
    "-32002": ["wallet-error", "Your wallet already has a request waiting. Open your wallet, answer or close that request, then press Pay again."],
    "-32603": ["wallet-error", "Your wallet hit an internal error. Reopen your wallet and press Pay again; if it keeps happening, try another account or wallet."],
    "-32000": ["wallet-error", "Your wallet's network connection failed. Wait a moment and press Pay again."],
  };

  function walletFailure(error) {
    const code = error && (error.code !== undefined ? error.code : error.data && error.data.code);
    const raw = (error && error.message) || String(error);
    const known = WALLET_ERRORS[String(code)];
    if (known) return conclude(known[0], { reason: known[1], technical: "code " + code + ": " + raw });
    return conclude("wallet-error", {
      reason: "Your wallet stopped before signing. Press Pay to try again.",
      technical: raw,
    });
  }

  function serverFailure(error) {
    if (error.status === 0) return conclude("unreachable", { technical: error.message });
    if (error.status === 409) { poll(); return; }  // no longer payable: the status says why
    let reason = "The server refused it.";
    if (/insufficient|balance/i.test(error.reason || error.message)) reason = "Your account does not hold enough USDC for it.";
    else if (/signature/i.test(error.reason || error.message)) reason = "The signature did not match your account.";
    else if (error.status >= 500) reason = "The server could not process it right now.";
    conclude("refused", { reason, technical: error.message });
  }

  function provider() {
    if (wallets.length) return wallets[chosen].provider;
    const injected = window.ethereum;
    return injected && typeof injected.request === "function" ? injected : null;
  }

  function short(address) {
    return address.slice(0, 6) + "…" + address.slice(-4);
  }

  function units(atomic) {
    const scale = 10n ** BigInt(data.asset.decimals);
    const whole = atomic / scale;
    let fraction = (atomic % scale).toString().padStart(data.asset.decimals, "0").replace(/0+$/, "");
    if (fraction.length < 2) fraction = fraction.padEnd(2, "0");
    // Thousands separated, as the server writes amounts (money.format_decimal).
    return whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + fraction + " " + data.asset.symbol;
  }

  // balanceOf(payer) on the token, read through the wallet's own provider.
  async function balanceOf(ethereum, payer) {
    const call = "0x70a08231" + payer.slice(2).toLowerCase().padStart(64, "0");
    const answer = await ethereum.request({ method: "eth_call", params: [{ to: data.asset.address, data: call }, "latest"] });
    return BigInt(answer);
  }

  async function onRightChain(ethereum) {
    const chainId = "0x" + data.chain.id.toString(16);
    const current = await ethereum.request({ method: "eth_chainId" });
    if (typeof current === "string" && parseInt(current, 16) === data.chain.id) return;
    try {
      await ethereum.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    } catch (error) {
      // 4902: the wallet does not know this chain yet; offer to add it where we know its RPC.
      if (!error || error.code !== 4902 || !data.chain.rpcUrls.length) throw error;
      await ethereum.request({
        method: "wallet_addEthereumChain",
        params: [{
          chainId,
          chainName: data.chain.label,
          nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
          rpcUrls: data.chain.rpcUrls,
          blockExplorerUrls: data.chain.explorer ? [data.chain.explorer] : [],
        }],
      });
    }
  }

  async function payWithWallet() {
    const ethereum = provider();
    if (!ethereum) return conclude("no-wallet");
    setBusy(true);
    clearSteps();
    let current = step("Connect your wallet");
    let stage = "wallet";
    try {
      show("connecting");
      const accounts = await ethereum.request({ method: "eth_requestAccounts" });
      if (!accounts || !accounts.length) throw Object.assign(new Error("the wallet shared no account"), { code: 4100 });
      const payer = accounts[0];
      showFact("account", payer);
      current.done();
      current = step("Switch to " + data.chain.label);
      await onRightChain(ethereum);
      current.done();
      current = step("Check your balance");
      show("checking");
      let balance = null;
      try {
        balance = await balanceOf(ethereum, payer);
      } catch (_) {
        showFact("balance", "could not be read; the server checks it when you pay");
      }
      if (balance !== null) {
        showFact("balance", units(balance));
        if (balance < BigInt(data.price)) {
          current.failed();
          return conclude("short", { account: short(payer), balance: units(balance) });
        }
      }
      current.done();
      stage = "server";
      current = step("Prepare the payment");
      const prepared = await postJson(data.endpoints.authorization, { from: payer });
      current.done();
      stage = "wallet";
      current = step("Approve it in your wallet");
      show("signing");
      const signature = await ethereum.request({
        method: "eth_signTypedData_v4",
        params: [payer, JSON.stringify(prepared.typedData)],
      });
      current.done();
      stage = "server";
      current = step("Send it on " + data.chain.label);
      show("settling");
      const answer = await postJson(data.endpoints.pay, { authorization: prepared.authorization, signature });
      current.done();
      settled(answer);
    } catch (error) {
      current.failed();
      if (stage === "server" || error instanceof ServerError) serverFailure(error);
      else walletFailure(error);
    } finally {
      setBusy(false);
    }
  }

  async function payWithDemoWallet() {
    setBusy(true);
    clearSteps();
    const current = step("The demo wallet signs and the server sends it");
    show("settling");
    try {
      const answer = await postJson(data.endpoints.demo, {});
      current.done();
      settled(answer);
    } catch (error) {
      current.failed();
      serverFailure(error);
    } finally {
      setBusy(false);
    }
  }

  function settled(answer) {
    paidHere = true;
    showReceipt(answer.receipt);
    conclude("paid");
  }

  // -- EIP-6963: every installed wallet announces itself; the payer picks one ------------------

  function renderWallets() {
    const list = $("wallet-list");
    list.textContent = "";
    wallets.forEach((wallet, index) => {
      const label = document.createElement("label");
      label.className = "wallet";
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "wallet";
      radio.checked = index === chosen;
      radio.addEventListener("change", () => { chosen = index; });
      label.appendChild(radio);
      if (typeof wallet.icon === "string" && wallet.icon.startsWith("data:image/")) {
        const icon = document.createElement("img");
        icon.src = wallet.icon;
        icon.alt = "";
        icon.width = 20;
        icon.height = 20;
        label.appendChild(icon);
      }
      label.appendChild(document.createTextNode(" " + wallet.name));
      list.appendChild(label);
    });
    $("wallets").hidden = wallets.length < 2;
  }

  window.addEventListener("eip6963:announceProvider", (event) => {
    const detail = event.detail;
    if (!detail || !detail.info || !detail.provider || typeof detail.provider.request !== "function") return;
    if (wallets.some((wallet) => wallet.uuid === detail.info.uuid)) return;
    wallets.push({
      uuid: detail.info.uuid,
      name: String(detail.info.name || "Wallet").slice(0, 60),
      icon: detail.info.icon,
      provider: detail.provider,
    });
    renderWallets();
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));

  // -- time and liveness ---------------------------------------------------------------------

  function tick() {
    if (state !== "issued" && !["rejected", "wrong-chain", "short", "wallet-error", "refused", "no-wallet"].includes(state)) return;
    const left = Math.floor(data.expiresAt - Date.now() / 1000);
    if (left <= 0) {
      $("countdown").textContent = "now";
      poll();  // the server decides: it may have been paid just in time
      return;
    }
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    $("countdown").textContent = "in " + minutes + ":" + seconds;
  }

  $("pay").addEventListener("click", payWithWallet);
  if (data.endpoints.demo) $("demo-pay").addEventListener("click", payWithDemoWallet);
  if (data.receipt) showReceipt(data.receipt);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") poll(); });
  window.addEventListener("focus", poll);
  tick();
  setInterval(tick, 1000);
  setInterval(poll, POLL_MS);
})();
