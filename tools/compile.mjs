// Compile x402_mcp/contracts/USDC.sol into the artifact the Python package loads.
//
//   cd tools && npm ci && node compile.mjs
//
// Tests never compile: they load the committed artifact, and a test compares its
// sourceSha256 with the current USDC.sol so a stale artifact fails loudly. Run this
// after every change to the contract. The compiler is the exact solc-js version in
// package.json, and the EVM version is pinned because solc's default moves
// (0.8.37 defaults to "osaka").

import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const EVM_VERSION = "cancun";
const OPTIMIZER_RUNS = 200;
const SOURCE_NAME = "USDC.sol";
const CONTRACT_NAME = "USDC";

const here = dirname(fileURLToPath(import.meta.url));
const contractsDir = join(here, "..", "x402_mcp", "contracts");
const sourcePath = join(contractsDir, SOURCE_NAME);
const artifactPath = join(contractsDir, `${CONTRACT_NAME}.json`);

const source = readFileSync(sourcePath);
const input = {
  language: "Solidity",
  sources: { [SOURCE_NAME]: { content: source.toString("utf8") } },
  settings: {
    evmVersion: EVM_VERSION,
    optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
    outputSelection: { [SOURCE_NAME]: { [CONTRACT_NAME]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const problems = output.errors ?? [];
for (const problem of problems) {
  console.error(problem.formattedMessage ?? problem.message);
}
if (problems.some((problem) => problem.severity === "error")) {
  process.exit(1);
}

const contract = output.contracts[SOURCE_NAME][CONTRACT_NAME];
const artifact = {
  contractName: CONTRACT_NAME,
  abi: contract.abi,
  bytecode: `0x${contract.evm.bytecode.object}`,
  deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
  compiler: `solc-js ${solc.version()}`,
  evmVersion: EVM_VERSION,
  optimizerRuns: OPTIMIZER_RUNS,
  sourceSha256: createHash("sha256").update(source).digest("hex"),
};
writeFileSync(artifactPath, `${JSON.stringify(artifact, null, 2)}\n`);
console.log(
  `wrote ${artifactPath}: initcode ${(artifact.bytecode.length - 2) / 2} bytes, ` +
    `runtime ${(artifact.deployedBytecode.length - 2) / 2} bytes, ${artifact.compiler}`,
);
