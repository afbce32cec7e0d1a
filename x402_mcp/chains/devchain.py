"""DevChain: an EVM chain inside this process with our USDC deployed, so everything runs offline.

It also carries our batch-settlement test doubles and Multicall3 at their canonical addresses
(see `x402_mcp.chains.contracts`).

```python
chain = DevChain()
payer = chain.new_account(usdc="10")          # funded with 10 USDC, no ETH needed
payments = Payments(pay_to=..., network=chain.network, settlement=chain.settlement())
chain.balance_of(payer.address)               # atomic units (10_000_000)
```

`TokenChain` is the chain-agnostic part: our token, funded accounts, balances,
snapshots and a settlement backend over any node whose first account is
unlocked and funded. `DevChain` runs it on py-evm through eth-tester; the test
suite runs the very same `TokenChain` on anvil.
"""

from __future__ import annotations

import threading
import weakref
from decimal import Decimal
from typing import Any, ClassVar

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3 import EthereumTesterProvider, Web3
from web3.types import RPCEndpoint, TxParams, Wei

from ..core.money import to_atomic
from ..core.networks import Asset, Network
from ..errors import X402MCPError
from ..settlement.local import LocalSettlement
from .contracts import canonical_genesis_state
from .token import UsdcToken

__all__ = ["DEV_CHAIN_ID", "DevChain", "SnapshotId", "TokenChain"]

DEV_CHAIN_ID = 1337
"""The chain id DevChain reports, both to `eth_chainId` and to contracts (`block.chainid`)."""

SnapshotId = int | str

_GAS_FUNDING_WEI = 10 * 10**18
_NODE_ACCOUNTS = 10


class TokenChain:
    """A development chain with our EIP-3009 USDC deployed on it.

    Deploys the token from the packaged artifact with the node's first account as
    owner (the minter). Every method is synchronous and holds `lock`, which the
    settlement backend holds too, so a chain that is not thread-safe (py-evm) is
    never entered from two threads at once.

    Args:
        w3: a Web3 whose node holds its first account unlocked and funded.
        label: a name for people (`network_info.label`).
        token_name, token_version: the token's EIP-712 domain.
        gas_account: the settlement backend's gas payer; by default a fresh account
            funded with 10 ETH from the node's first account.
        lock: the lock to share; a new `threading.RLock` by default.
    """

    def __init__(
        self,
        w3: Web3,
        *,
        label: str = "Development chain",
        token_name: str = "USD Coin",
        token_version: str = "2",
        gas_account: LocalAccount | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        self._w3 = w3
        self._lock = lock if lock is not None else threading.RLock()
        with self._lock:
            chain_id = w3.eth.chain_id
            self._owner = w3.eth.accounts[0]
            self._token = UsdcToken.deploy(w3, owner=self._owner, name=token_name, version=token_version)
            if gas_account is None:
                gas_account = Account.create()
                self._send_eth(gas_account.address, _GAS_FUNDING_WEI)
        self._gas_account = gas_account
        self._network = Network(
            caip2=f"eip155:{chain_id}", chain_id=chain_id, label=label, usdc=self._token.asset, testnet=True
        )
        self._settlement: LocalSettlement | None = None

    @property
    def network(self) -> str:
        """The chain's CAIP-2 id, e.g. `eip155:1337`."""
        return self._network.caip2

    @property
    def network_info(self) -> Network:
        """The chain as a `Network` whose `usdc` is our token."""
        return self._network

    @property
    def usdc(self) -> str:
        """The token's checksummed address."""
        return self._token.address

    @property
    def asset(self) -> Asset:
        """The token as an `Asset`: address and EIP-712 domain."""
        return self._token.asset

    @property
    def token(self) -> UsdcToken:
        return self._token

    @property
    def w3(self) -> Web3:
        return self._w3

    @property
    def lock(self) -> threading.RLock:
        """Hold it around any direct use of `w3` from a thread of your own."""
        return self._lock

    def new_account(self, usdc: str | Decimal | int = "10") -> LocalAccount:
        """A new account holding `usdc` dollars of the token (a decimal string, never a float) and no ETH.

        Raises:
            ConfigurationError: for a float, a negative amount or more than 6 decimals.
        """
        amount = to_atomic(usdc, self._token.asset.decimals)
        account: LocalAccount = Account.create()
        if amount:
            with self._lock:
                self._token.mint(account.address, amount)
        return account

    def mint(self, address: str, usdc: str | Decimal | int) -> None:
        """Add `usdc` dollars of the token to `address`.

        Raises:
            ConfigurationError: for a float, a negative amount or more than 6 decimals.
            X402MCPError: for a zero amount (the token refuses it).
        """
        amount = to_atomic(usdc, self._token.asset.decimals)
        with self._lock:
            self._token.mint(address, amount)

    def fund_eth(self, address: str, wei: int) -> None:
        """Send `wei` of the native coin from the node's first account (payers never need it)."""
        with self._lock:
            self._send_eth(address, wei)

    def balance_of(self, address: str) -> int:
        """`address`'s token balance in atomic units (1 USDC = 1_000_000)."""
        with self._lock:
            return self._token.balance_of(address)

    def settlement(self) -> LocalSettlement:
        """The settlement backend for this chain; the same instance on every call.

        Its gas is paid by a funded account of the node, and it shares this chain's lock.
        """
        if self._settlement is None:
            self._settlement = LocalSettlement(self._w3, self._gas_account, self._network, lock=self._lock)
        return self._settlement

    def snapshot(self) -> SnapshotId:
        """Record the chain's state; `revert(id)` returns to it (once: the snapshot is then used up)."""
        with self._lock:
            result: SnapshotId = self._w3.manager.request_blocking(RPCEndpoint("evm_snapshot"), [])
            return result

    def revert(self, snapshot_id: SnapshotId) -> None:
        """Return the chain to `snapshot_id`'s state, and tell the settlement backend to resync.

        Raises:
            X402MCPError: if the node does not know that snapshot.
        """
        with self._lock:
            done: Any = self._w3.manager.request_blocking(RPCEndpoint("evm_revert"), [snapshot_id])
            if done is False:
                raise X402MCPError(f"the chain has no snapshot {snapshot_id!r} to revert to")
            if self._settlement is not None:
                # The gas account's nonce went back with the chain.
                self._settlement.resync()

    def _send_eth(self, address: str, wei: int) -> None:
        params: TxParams = {
            "from": self._owner,
            "to": to_checksum_address(address),
            "value": Wei(wei),
            "gas": 21_000,
        }
        tx_hash = self._w3.eth.send_transaction(params)
        receipt = self._w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.01)
        if receipt["status"] != 1:
            raise X402MCPError(f"funding {address} with {wei} wei failed in {tx_hash.to_0x_hex()}")


class DevChain(TokenChain):
    """A py-evm chain in this process, chain id 1337, with USDC ("USD Coin", version "2") deployed.

    Starting one takes a few tens of milliseconds. It reports `eip155:1337` both over
    JSON-RPC and to contracts, so EIP-712 signatures for that chain verify on it.
    Mining is instant (a block per transaction), and the block clock follows the
    wall clock but moves at least one second per block.
    """

    def __init__(
        self, *, chain_id: int = DEV_CHAIN_ID, token_name: str = "USD Coin", token_version: str = "2"
    ) -> None:
        w3, gas_key = _embedded_web3(chain_id)
        super().__init__(
            w3,
            label="DevChain",
            token_name=token_name,
            token_version=token_version,
            gas_account=Account.from_key(gas_key),
        )
        DevChain._live.add(self)

    _live: ClassVar[weakref.WeakSet[DevChain]] = weakref.WeakSet()
    """Every DevChain still in use, so a settlement can be traced back to its chain."""

    @classmethod
    def of_settlement(cls, settlement: object) -> DevChain | None:
        """The DevChain whose `settlement()` `settlement` is, or None (any other backend)."""
        if not isinstance(settlement, LocalSettlement):
            return None
        return next((chain for chain in list(cls._live) if chain._settlement is settlement), None)


def _embedded_web3(chain_id: int) -> tuple[Web3, bytes]:
    """A Web3 on a fresh py-evm chain reporting `chain_id`, and the key of a funded node account."""
    # Imported here, not at the top: py-evm takes about 0.3 s to import, and only a
    # DevChain needs it (a server settling over JSON-RPC never does).
    from eth_tester import EthereumTester, PyEVMBackend
    from web3.providers.eth_tester.defaults import API_ENDPOINTS

    # The batch-settlement contracts and Multicall3 live at fixed addresses, so they are part of
    # the genesis state rather than deployed (a deployment would choose its own address).
    genesis = dict(PyEVMBackend.generate_genesis_state(num_accounts=_NODE_ACCOUNTS))
    genesis.update(canonical_genesis_state())
    # eth-tester hard-codes its chain id in two places, `block.chainid` (the chain class)
    # and `eth_chainId`; both must say `chain_id` or EIP-712 signatures would not verify.
    backend = PyEVMBackend(genesis_state=genesis)
    # It also makes one key per genesis account: keep only the funded node accounts.
    backend.account_keys = backend.account_keys[:_NODE_ACCOUNTS]
    type(backend.chain).chain_id = chain_id  # the chain class is built per backend: patching it is local
    endpoints = {namespace: dict(functions) for namespace, functions in API_ENDPOINTS.items()}
    endpoints["eth"]["chainId"] = lambda *_: chain_id
    w3 = Web3(EthereumTesterProvider(EthereumTester(backend), api_endpoints=endpoints))
    # Account 0 owns the token; account 1 pays the settlement gas, so neither waits for the other.
    gas_key: bytes = backend.account_keys[1].to_bytes()
    return w3, gas_key
