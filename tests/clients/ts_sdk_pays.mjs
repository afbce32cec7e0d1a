// A TypeScript MCP host's client (@modelcontextprotocol/sdk 1.x, as under Claude Desktop,
// Cursor and VS Code) calls a paid tool over streamable HTTP, reads the challenge, pays it
// with the official x402 TypeScript client (@x402/core + @x402/evm, a viem account) through
// _meta["x402/payment"], and prints every step as one JSON object on stdout.
//
// Usage: node ts_sdk_pays.mjs <mcp url> <tool> <arguments as JSON>; the payer's private key
// comes in the PAYER_KEY environment variable (never on the command line).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { x402Client } from "@x402/core/client";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const [url, tool, argumentsJson] = process.argv.slice(2);
const args = JSON.parse(argumentsJson);
const report = {};

const client = new Client({ name: "x402-mcp-ts-sdk-test", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
try {
  // The classic initialize handshake's answer: what the server advertises to a 1.x client.
  report.capabilities = client.getServerCapabilities();
  // Hosts list tools first; that is also when the SDK starts validating outputs against schemas.
  const { tools } = await client.listTools();
  report.listed = tools.find((each) => each.name === tool);

  try {
    report.unpaid = await client.callTool({ name: tool, arguments: args });
  } catch (error) {
    report.unpaidError = String(error);
    throw error;
  }
  // The x402 MCP transport's text form: the PaymentRequired is the JSON of content[0].
  const required = JSON.parse(report.unpaid.content[0].text);

  const payer = new x402Client();
  registerExactEvmScheme(payer, { signer: privateKeyToAccount(process.env.PAYER_KEY) });
  payer.setSpendControls(false); // the test chain's token is not in its table of known assets
  const payment = await payer.createPaymentPayload(required);

  report.paid = await client.callTool({ name: tool, arguments: args, _meta: { "x402/payment": payment } });
} finally {
  await client.close();
  process.stdout.write(JSON.stringify(report));
}
