"""A real Solana VM in-process (LiteSVM), set up like devnet: the devnet USDC mint at its devnet address.

Everything moves by real transactions run by the real programs (SPL Token, Associated
Token Account, Memo), with signature and blockhash checks on; only the mint itself is
written into place, because it must sit at devnet USDC's address.

LiteSVM quirks worth knowing: only the latest blockhash is valid (`expire_blockhash`
invalidates every transaction signed before it), the slot does not advance by itself,
and an identical transaction sent twice fails with `AlreadyProcessed`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint, TokenAccount
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata

SOLANA_DEVNET = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
USDC_DEVNET = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
USDC_DECIMALS = 6

TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ASSOCIATED_TOKEN_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
MEMO_PROGRAM = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")

LAMPORTS_PER_SOL = 10**9
_MINT_TO = 7  # SPL Token instruction
_CREATE_IDEMPOTENT = 1  # Associated Token Account instruction


def usdc_atomic(usdc: str | int | Decimal) -> int:
    """USDC as a decimal string, Decimal or whole int -> atomic units (6 decimals). No floats."""
    if isinstance(usdc, bool | float) or not isinstance(usdc, str | int | Decimal):
        raise TypeError(f"USDC amounts are Decimal strings or ints, not {type(usdc).__name__}")
    try:
        scaled = Decimal(usdc).scaleb(USDC_DECIMALS)
    except InvalidOperation:
        raise ValueError(f"not a USDC amount: {usdc!r}") from None
    if scaled < 0 or scaled != scaled.to_integral_value():
        raise ValueError(f"not a USDC amount with at most {USDC_DECIMALS} decimals: {usdc!r}")
    return int(scaled)


class LocalSolana:
    """LiteSVM with devnet USDC; `fee_payer` is a SOL-funded key for the facilitator."""

    def __init__(self) -> None:
        self.litesvm = LiteSVM()
        for program in (TOKEN_PROGRAM, ASSOCIATED_TOKEN_PROGRAM, MEMO_PROGRAM):
            account = self.litesvm.get_account(program)
            if account is None or not account.executable:
                raise RuntimeError(f"LiteSVM lacks the program {program}")
        self.mint = Pubkey.from_string(USDC_DEVNET)
        # Holds the mint authority and pays for the harness's own setup transactions, so
        # that the facilitator's fee payer only ever pays for settlements.
        self._authority = Keypair()
        self._airdrop(self._authority.pubkey(), 100 * LAMPORTS_PER_SOL)
        mint = bytes(Mint(self._authority.pubkey(), 0, USDC_DECIMALS, True, None))
        rent = self.litesvm.minimum_balance_for_rent_exemption(len(mint))
        self.litesvm.set_account(self.mint, Account(rent, mint, TOKEN_PROGRAM))
        self.fee_payer = Keypair()
        self._airdrop(self.fee_payer.pubkey(), LAMPORTS_PER_SOL)

    # -- reading --------------------------------------------------------------------------

    def token_account(self, owner: str) -> Pubkey:
        """The owner's associated USDC token account address (it may not exist)."""
        return get_associated_token_address(Pubkey.from_string(owner), self.mint)

    def usdc_balance(self, owner: str) -> int:
        """The owner's USDC in atomic units; 0 when it has no token account."""
        account = self.litesvm.get_account(self.token_account(owner))
        if account is None:
            return 0
        return TokenAccount.from_bytes(account.data).amount

    def sol_balance(self, address: str) -> int:
        """Lamports held by an address; 0 when the account does not exist."""
        return self.litesvm.get_balance(Pubkey.from_string(address)) or 0

    # -- setting up -----------------------------------------------------------------------

    def open_token_account(self, owner: str) -> None:
        """Create the owner's associated USDC account (as a payee would), if it has none."""
        if self.litesvm.get_account(self.token_account(owner)) is None:
            self._run([self._create_token_account(Pubkey.from_string(owner))])

    def new_payer(self, usdc: str | int | Decimal = "10") -> Keypair:
        """A fresh wallet whose token account holds `usdc` USDC, minted to it. It holds no SOL."""
        amount = usdc_atomic(usdc)
        payer = Keypair()
        instructions = [self._create_token_account(payer.pubkey())]
        if amount:
            instructions.append(self._mint_to(self.token_account(str(payer.pubkey())), amount))
        self._run(instructions)
        return payer

    def _create_token_account(self, owner: Pubkey) -> Instruction:
        return Instruction(
            ASSOCIATED_TOKEN_PROGRAM,
            bytes([_CREATE_IDEMPOTENT]),
            [
                AccountMeta(self._authority.pubkey(), is_signer=True, is_writable=True),
                AccountMeta(self.token_account(str(owner)), is_signer=False, is_writable=True),
                AccountMeta(owner, is_signer=False, is_writable=False),
                AccountMeta(self.mint, is_signer=False, is_writable=False),
                AccountMeta(SYSTEM_PROGRAM, is_signer=False, is_writable=False),
                AccountMeta(TOKEN_PROGRAM, is_signer=False, is_writable=False),
            ],
        )

    def _mint_to(self, token_account: Pubkey, amount: int) -> Instruction:
        return Instruction(
            TOKEN_PROGRAM,
            bytes([_MINT_TO]) + amount.to_bytes(8, "little"),
            [
                AccountMeta(self.mint, is_signer=False, is_writable=True),
                AccountMeta(token_account, is_signer=False, is_writable=True),
                AccountMeta(self._authority.pubkey(), is_signer=True, is_writable=False),
            ],
        )

    def _run(self, instructions: list[Instruction]) -> TransactionMetadata:
        message = MessageV0.try_compile(
            self._authority.pubkey(), instructions, [], self.litesvm.latest_blockhash()
        )
        result = self.litesvm.send_transaction(VersionedTransaction(message, [self._authority]))
        if isinstance(result, FailedTransactionMetadata):
            raise RuntimeError(f"setup transaction failed: {result.err()}: {result.meta().logs()}")
        return result

    def _airdrop(self, address: Pubkey, lamports: int) -> None:
        result = self.litesvm.airdrop(address, lamports)
        if isinstance(result, FailedTransactionMetadata):
            raise RuntimeError(f"airdrop failed: {result.err()}")
