// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Multicall3's `tryAggregate`, for development chains
/// @notice anvil and py-evm have no Multicall3; the official x402 facilitator reads channel state
///         and simulates ERC-6492 deployments through `tryAggregate` (the only entry point it uses),
///         so this runtime is placed at Multicall3's canonical address 0xcA11bde0…CA11.
contract Multicall3 {
    struct Call {
        address target;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    function tryAggregate(bool requireSuccess, Call[] calldata calls) external payable returns (Result[] memory results) {
        results = new Result[](calls.length);
        for (uint256 i; i < calls.length; ++i) {
            (bool success, bytes memory returnData) = calls[i].target.call(calls[i].callData);
            require(success || !requireSuccess, "Multicall3: call failed");
            results[i] = Result(success, returnData);
        }
    }
}
