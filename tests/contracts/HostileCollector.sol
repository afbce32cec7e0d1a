// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IERC20Transfer {
    function transfer(address to, uint256 amount) external returns (bool);
}

/// @title A deposit collector that pays from its own balance, short or re-entering on request
/// @notice For tests of x402BatchSettlement's deposit checks: the settlement contract must
///         credit a channel only with what actually arrived, and refuse a re-entered deposit.
/// @dev collectorData = abi.encode(uint256 shortBy, bytes reenterWith): it sends `amount - shortBy`
///      to its caller, then calls its caller again with `reenterWith` when that is not empty.
contract HostileCollector {
    function collect(address, address token, uint256 amount, bytes32, bytes calldata data) external {
        (uint256 shortBy, bytes memory reenterWith) = abi.decode(data, (uint256, bytes));
        require(IERC20Transfer(token).transfer(msg.sender, amount - shortBy), "HostileCollector: transfer failed");
        if (reenterWith.length > 0) {
            (bool ok, bytes memory result) = msg.sender.call(reenterWith);
            if (!ok) {
                assembly {
                    revert(add(result, 0x20), mload(result))
                }
            }
        }
    }
}
