import pytest

from x402_mcp.core.networks import BASE, BASE_SEPOLIA, Asset, resolve_network, same_address
from x402_mcp.errors import ConfigurationError


def test_base_networks_carry_their_usdc_and_domain() -> None:
    assert resolve_network("base") is BASE
    assert resolve_network("eip155:8453") is BASE
    assert BASE.usdc is not None and (BASE.usdc.name, BASE.usdc.version) == ("USD Coin", "2")
    sepolia = resolve_network("base-sepolia")
    assert sepolia is BASE_SEPOLIA and sepolia.caip2 == "eip155:84532"
    assert sepolia.usdc is not None
    assert sepolia.usdc.address == "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    assert sepolia.usdc.name == "USDC"


def test_any_evm_chain_by_caip2() -> None:
    network = resolve_network("eip155:31337")
    assert (network.chain_id, network.usdc) == (31337, None)


@pytest.mark.parametrize("name", ["solana:devnet", "eip155:", "eip155:0x1", "mainnet", ""])
def test_unknown_networks_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown network"):
        resolve_network(name)


def test_assets_are_checksummed_and_validated() -> None:
    asset = Asset("0x036cbd53842c5426634e7929541ec2318f3dcf7e", name="USDC")
    assert asset.address == "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    with pytest.raises(ConfigurationError, match="not an EVM address"):
        Asset("0x1234", name="USDC")
    assert same_address(asset.address, asset.address.lower())
