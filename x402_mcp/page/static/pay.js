// The hosted payment page: connect an EIP-1193 wallet, sign the EIP-3009
// authorization the server prepared, and hand the signature back to the server,
// which verifies and settles it. Everything shown is set with textContent, so
// nothing a server or wallet returns is ever parsed as HTML.
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("request-data").textContent);
  const $ = (id) => document.getElementById(id);
  const progress = $("progress");
  let state = data.state;

  function setStatus(kind, title, detail) {
    const box = $("status");
    box.className = "status status-" + kind;
    $("status-title").textContent = title;
    $("status-detail").textContent = detail || "";
    document.querySelector("main").dataset.state = kind;
  }

  function showReceipt(txHash, txUrl) {
    const link = $("tx-link");
    link.textContent = txHash;
    if (txUrl) {
      link.setAttribute("href", txUrl);
    } else {
      link.removeAttribute("href");
    }
    $("receipt").hidden = false;
  }

  function step(text) {
    progress.hidden = false;
    const item = document.createElement("li");
    item.textContent = text;
    progress.appendChild(item);
    return {
      done() { item.classList.add("done"); },
      failed() { item.classList.add("failed"); },
    };
  }

  function busy(on) {
    for (const id of ["pay", "demo-pay"]) {
      const button = $(id);
      if (button) button.disabled = on;
    }
  }

  async function postJson(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
    });
    let answer = {};
    try {
      answer = await response.json();
    } catch (_) {
      answer = { error: "The server answered " + response.status + " without details." };
    }
    if (!response.ok) {
      throw new Error(answer.error || "The server answered " + response.status + ".");
    }
    return answer;
  }

  function paid(answer) {
    state = answer.state;
    setStatus("paid", "Paid", "Go back to your chat and call " + data.tool + " again: it will run once.");
    showReceipt(answer.txHash, answer.txUrl);
    $("countdown").textContent = "—";
    $("actions").hidden = true;
  }

  async function switchChain(ethereum) {
    const chainId = "0x" + data.chain.id.toString(16);
    const current = await ethereum.request({ method: "eth_chainId" });
    if (typeof current === "string" && parseInt(current, 16) === data.chain.id) return;
    try {
      await ethereum.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    } catch (error) {
      // 4902: the wallet does not know this chain yet; offer to add it.
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
    const ethereum = window.ethereum;
    if (!ethereum || typeof ethereum.request !== "function") {
      setStatus("error", "No browser wallet found",
        "Install MetaMask, Coinbase Wallet or Rabby, or pay from an x402 client at this same address.");
      return;
    }
    busy(true);
    let current = step("Connecting your wallet…");
    try {
      const accounts = await ethereum.request({ method: "eth_requestAccounts" });
      if (!accounts || !accounts.length) throw new Error("The wallet shared no account.");
      const payer = accounts[0];
      current.done();
      current = step("Switching to " + data.chain.label + "…");
      await switchChain(ethereum);
      current.done();
      current = step("Preparing the authorization…");
      const prepared = await postJson(data.endpoints.authorization, { from: payer });
      current.done();
      current = step("Waiting for your signature…");
      const signature = await ethereum.request({
        method: "eth_signTypedData_v4",
        params: [payer, JSON.stringify(prepared.typedData)],
      });
      current.done();
      current = step("Settling the payment on " + data.chain.label + "…");
      setStatus("settling", "Settling", "The server is submitting your authorization.");
      const answer = await postJson(data.endpoints.pay, {
        authorization: prepared.authorization,
        signature,
      });
      current.done();
      paid(answer);
    } catch (error) {
      current.failed();
      const message = (error && error.message) || String(error);
      setStatus("error", "Not paid", message);
    } finally {
      busy(false);
    }
  }

  async function payWithDemoWallet() {
    busy(true);
    const current = step("The demo wallet signs and the server settles…");
    try {
      const answer = await postJson(data.endpoints.demo, {});
      current.done();
      paid(answer);
    } catch (error) {
      current.failed();
      setStatus("error", "Not paid", (error && error.message) || String(error));
    } finally {
      busy(false);
    }
  }

  function tick() {
    if (state !== "issued") return;
    const left = Math.floor(data.expiresAt - Date.now() / 1000);
    if (left <= 0) {
      state = "expired";
      $("countdown").textContent = "expired";
      setStatus("expired", "Expired", "This payment request expired. Call the tool again for a new link.");
      $("actions").hidden = true;
      return;
    }
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    $("countdown").textContent = "in " + minutes + ":" + seconds;
  }

  const payButton = $("pay");
  if (payButton) payButton.addEventListener("click", payWithWallet);
  const demoButton = $("demo-pay");
  if (demoButton && data.endpoints.demo) demoButton.addEventListener("click", payWithDemoWallet);
  tick();
  setInterval(tick, 1000);
})();
