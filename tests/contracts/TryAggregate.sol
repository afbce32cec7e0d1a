// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The one Multicall3 entry point the official x402 facilitator uses, for test chains
/// @notice anvil has no Multicall3; tests put this runtime at Multicall3's canonical address
///         (anvil_setCode) so the official library can simulate ERC-6492 deployments there.
contract TryAggregate {
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
        for (uint256 i = 0; i < calls.length; i++) {
            (bool success, bytes memory returnData) = calls[i].target.call(calls[i].callData);
            require(success || !requireSuccess, "TryAggregate: call failed");
            results[i] = Result(success, returnData);
        }
    }
}
