"""Development chains: the embedded DevChain, the devnet (anvil) runner, the demo and its wallet.

Development only: the command line and the tests import it; the production path must not.
"""

from ..gate.config import DevelopmentChain, register_development_chain
from ..page.ports import DemoSigner, register_demo_signer


def _demo_wallet_for(demo_chain: object, settlement: object) -> DemoSigner | None:
    """The demo wallet when the payments settle on an embedded DevChain (see page.ports)."""
    from .demo_wallet import DemoWallet, demo_chain_for

    chain = demo_chain_for(demo_chain, settlement)
    return None if chain is None else DemoWallet(chain)


# Any DevChain is built after this package loads, so the page finds its demo wallet.
register_demo_signer(_demo_wallet_for)


def embedded_chain() -> DevelopmentChain:
    """A fresh embedded DevChain (the `devchain` development chain)."""
    from .devchain import DevChain

    return DevChain()


# `X402_SETTLEMENT=devchain` builds one (gate.config names no development code itself).
register_development_chain("devchain", embedded_chain)
