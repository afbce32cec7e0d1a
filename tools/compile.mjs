// Compile the project's Solidity sources into the artifacts loaded at run time and in tests.
//
//   cd tools && npm ci && node compile.mjs
//   node compile.mjs --check    # compile in memory; fail if a committed artifact differs
//
// Nothing compiles at run time or test time: the artifacts are committed, and tests
// compare each artifact's sourceSha256 with its current source so a stale artifact
// fails loudly. Run this after every change to a contract. The compiler is the exact
// solc-js version in package.json, and the EVM version is pinned because solc's
// default moves (0.8.37 defaults to "osaka").

import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const EVM_VERSION = "cancun";
const OPTIMIZER_RUNS = 200;

const CHECK_ONLY = process.argv.includes("--check");

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
// Each source and the contracts in it that get an artifact (written beside the source).
const BUILDS = [
  { source: join(root, "x402_mcp", "settlement", "contracts", "USDC.sol"), contracts: ["USDC"] },
  { source: join(root, "x402_mcp", "settlement", "contracts", "Erc6492Simulation.sol"), contracts: ["Erc6492Simulation"] },
  { source: join(root, "tests", "contracts", "OwnedWallet.sol"), contracts: ["OwnedWallet", "OwnedWalletFactory"] },
  {
    source: join(root, "x402_mcp", "chains", "contracts", "BatchSettlement.sol"),
    contracts: ["x402BatchSettlement", "ERC3009DepositCollector"],
  },
  { source: join(root, "x402_mcp", "chains", "contracts", "Multicall3.sol"), contracts: ["Multicall3"] },
  { source: join(root, "tests", "contracts", "HostileCollector.sol"), contracts: ["HostileCollector"] },
  {
    source: join(root, "tests", "contracts", "Delegate7702.sol"),
    contracts: ["SelfSigned7702Delegate", "Strict7702Delegate"],
  },
];

function compile({ source: sourcePath, contracts }) {
  const sourceName = basename(sourcePath);
  const source = readFileSync(sourcePath);
  const input = {
    language: "Solidity",
    sources: { [sourceName]: { content: source.toString("utf8") } },
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
      outputSelection: { [sourceName]: { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
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
  for (const name of contracts) {
    const contract = output.contracts[sourceName][name];
    const artifact = {
      contractName: name,
      abi: contract.abi,
      bytecode: `0x${contract.evm.bytecode.object}`,
      deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
      compiler: `solc-js ${solc.version()}`,
      evmVersion: EVM_VERSION,
      optimizerRuns: OPTIMIZER_RUNS,
      sourceSha256: createHash("sha256").update(source).digest("hex"),
    };
    const artifactPath = join(dirname(sourcePath), `${name}.json`);
    const text = `${JSON.stringify(artifact, null, 2)}\n`;
    if (CHECK_ONLY) {
      const fresh = existsSync(artifactPath) && readFileSync(artifactPath, "utf8") === text;
      console.log(`${fresh ? "fresh" : "STALE"} ${artifactPath}`);
      stale += fresh ? 0 : 1;
      continue;
    }
    writeFileSync(artifactPath, text);
    console.log(
      `wrote ${artifactPath}: initcode ${(artifact.bytecode.length - 2) / 2} bytes, ` +
        `runtime ${(artifact.deployedBytecode.length - 2) / 2} bytes, ${artifact.compiler}`,
    );
  }
}

let stale = 0;
for (const build of BUILDS) {
  compile(build);
}
if (stale > 0) {
  console.error(`${stale} artifact(s) differ from a fresh compile: run \`node compile.mjs\` in tools/`);
  process.exit(1);
}
