// Pays a hosted link with the official @x402/fetch client, as an outside agent would.
//
//   node x402_fetch_pay.mjs <hosted url> <payer private key> <token address> <max atomic amount>
//
// Prints one JSON line: the final status, the decoded PAYMENT-RESPONSE and the body.
// The packages are the pinned ones in tools/node_modules (their CommonJS builds).
import { createRequire } from "node:module";

const require = createRequire(new URL("../../tools/package.json", import.meta.url));
const { wrapFetchWithPayment, x402Client, decodePaymentResponseHeader } = require("@x402/fetch");
const { registerExactEvmScheme } = require("@x402/evm/exact/client");
const { privateKeyToAccount } = require("viem/accounts");

const [url, key, token, cap] = process.argv.slice(2);
const client = new x402Client();
registerExactEvmScheme(client, { signer: privateKeyToAccount(key) });
// Our dev-chain token is in no table of known assets: allow exactly it, up to the cap.
client.setSpendControls({ allowedAssets: [{ network: "eip155:*", asset: token, maxAmountPerPayment: cap }] });

const pay = wrapFetchWithPayment(fetch, client);
const response = await pay(url, { headers: { Accept: "application/json" } });
const header = response.headers.get("PAYMENT-RESPONSE");
console.log(
  JSON.stringify({
    status: response.status,
    paymentResponse: header ? decodePaymentResponseHeader(header) : null,
    body: await response.json(),
  }),
);
