"""Development chains: the embedded DevChain, the devnet (anvil) runner, the demo and its wallet.

Development only: the command line and the tests import it; the production path must not.
"""
