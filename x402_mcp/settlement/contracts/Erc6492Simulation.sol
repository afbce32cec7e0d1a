// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Simulate paying from a counterfactual (ERC-6492) wallet, in one eth_call
/// @notice Never deployed: its initcode is sent as an `eth_call` with no `to`, so the
///         constructor runs against the chain's state and nothing is kept. It deploys the
///         wallet through its factory, then makes the token call settlement would make,
///         and ends with that call's own result: the token's return data, or its revert
///         data unchanged (so revert strings map to reason codes as for any payment).
/// @dev Written for x402-mcp. A failed deployment reverts with `Error(string)` whose text
///      starts "ERC6492:", which no token uses.
contract Erc6492Simulation {
    constructor(address factory, bytes memory factoryCalldata, address wallet, address token, bytes memory tokenCalldata) {
        if (wallet.code.length == 0) {
            (bool deployed, ) = factory.call(factoryCalldata);
            require(deployed, "ERC6492: the factory call reverted");
            require(wallet.code.length != 0, "ERC6492: the factory did not deploy the payer");
        }
        (bool ok, bytes memory result) = token.call(tokenCalldata);
        assembly {
            switch ok
            case 0 { revert(add(result, 0x20), mload(result)) }
            default { return(add(result, 0x20), mload(result)) }
        }
    }
}
