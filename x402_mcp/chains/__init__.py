"""Development chains: the embedded DevChain, the devnet (anvil) runner, the demo and its wallet.

Development only: the command line and the tests import it; the production path must not.
"""

from ..page.ports import DemoSigner, register_demo_signer


def _demo_wallet_for(demo_chain: object, settlement: object) -> DemoSigner | None:
    """The demo wallet when the payments settle on an embedded DevChain (see page.ports)."""
    from .demo_wallet import DemoWallet, demo_chain_for

    chain = demo_chain_for(demo_chain, settlement)
    return None if chain is None else DemoWallet(chain)


# Any DevChain is built after this package loads, so the page finds its demo wallet.
register_demo_signer(_demo_wallet_for)
