// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title A contract wallet for tests: one owner EOA signs for it through EIP-1271
/// @notice Accepts a 65-byte ECDSA signature by its owner, or one wrapped the way Coinbase
///         Smart Wallet wraps it (`abi.encode(uint256 ownerIndex, bytes signature)`), so
///         payments exercise both USDC overloads. A `behaviour` other than Honest makes it
///         misbehave the ways a hostile or broken wallet can.
contract OwnedWallet {
    enum Behaviour { Honest, WrongMagic, Reverts, BurnsGas }

    bytes4 private constant _MAGIC = 0x1626ba7e;

    address public owner;
    address public immutable guardian;
    Behaviour public immutable behaviour;

    constructor(address initialOwner, address initialGuardian, Behaviour initialBehaviour) {
        owner = initialOwner;
        guardian = initialGuardian;
        behaviour = initialBehaviour;
    }

    /// @dev The guardian (a node account in tests) can rotate the key, like a recovery module.
    function setOwner(address newOwner) external {
        require(msg.sender == owner || msg.sender == guardian, "OwnedWallet: not allowed");
        owner = newOwner;
    }

    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4) {
        if (behaviour == Behaviour.WrongMagic) {
            return 0xdeadbeef;
        }
        if (behaviour == Behaviour.Reverts) {
            revert("OwnedWallet: always refuses");
        }
        if (behaviour == Behaviour.BurnsGas) {
            uint256 spin;
            while (gasleft() > 0) {
                spin++;
            }
            return bytes4(uint32(spin));
        }
        bytes memory ecdsa = signature;
        if (signature.length != 65) {
            (uint256 ownerIndex, bytes memory inner) = abi.decode(signature, (uint256, bytes));
            if (ownerIndex != 0) {
                return 0xffffffff;
            }
            ecdsa = inner;
        }
        return _recover(digest, ecdsa) == owner ? _MAGIC : bytes4(0xffffffff);
    }

    function _recover(bytes32 digest, bytes memory signature) private pure returns (address) {
        if (signature.length != 65) {
            return address(0);
        }
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        return ecrecover(digest, v, r, s);
    }
}

/// @title A CREATE2 factory of OwnedWallets, for counterfactual (ERC-6492) payers
contract OwnedWalletFactory {
    event WalletCreated(address indexed wallet, address indexed owner, uint256 salt);

    function createAccount(address walletOwner, uint256 salt) external returns (address wallet) {
        wallet = getAddress(walletOwner, salt);
        if (wallet.code.length != 0) {
            return wallet;
        }
        wallet = address(new OwnedWallet{salt: bytes32(salt)}(walletOwner, address(0), OwnedWallet.Behaviour.Honest));
        emit WalletCreated(wallet, walletOwner, salt);
    }

    function getAddress(address walletOwner, uint256 salt) public view returns (address) {
        bytes memory initcode = abi.encodePacked(
            type(OwnedWallet).creationCode, abi.encode(walletOwner, address(0), OwnedWallet.Behaviour.Honest)
        );
        bytes32 hash = keccak256(abi.encodePacked(bytes1(0xff), address(this), bytes32(salt), keccak256(initcode)));
        return address(uint160(uint256(hash)));
    }
}
