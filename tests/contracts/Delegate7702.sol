// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title An EIP-7702 delegate that vouches for its account's own key through EIP-1271
/// @notice Code an EOA delegates to runs as that EOA (`address(this)` is the EOA), so USDC,
///         seeing code, asks `isValidSignature`: this one accepts ECDSA by the account's key,
///         as permissive 7702 wallets do.
contract SelfSigned7702Delegate {
    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) {
            return 0xffffffff;
        }
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        return ecrecover(digest, v, r, s) == address(this) ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}

/// @title An EIP-7702 delegate without EIP-1271: signatures for its account cannot be checked on chain
contract Strict7702Delegate {
    function execute(address target, bytes calldata data) external {
        require(msg.sender == address(this), "Strict7702Delegate: only the account itself");
        (bool ok, ) = target.call(data);
        require(ok, "Strict7702Delegate: call failed");
    }
}
