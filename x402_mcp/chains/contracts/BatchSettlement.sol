// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

interface IERC20Minimal {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
}

interface IDepositCollector {
    function collect(address payer, address token, uint256 amount, bytes32 channelId, bytes calldata data) external;
}

interface IERC3009Receive {
    function receiveWithAuthorization(
        address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes memory sig
    ) external;
}

abstract contract Signatures {
    // EIP-2: an s above half the curve order is a malleable copy of another signature.
    uint256 private constant HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    bytes4 private constant EIP1271_MAGIC_VALUE = 0x1626ba7e;

    /// @dev The ECDSA signer of `digest`, or address(0) for anything malformed.
    function _recover(bytes32 digest, bytes memory signature) internal pure returns (address) {
        if (signature.length != 65) return address(0);
        (bytes32 r, bytes32 s) = abi.decode(signature, (bytes32, bytes32));
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_CURVE_ORDER || (v != 27 && v != 28)) return address(0);
        return ecrecover(digest, v, r, s);
    }

    /// @dev Routed by code, like SignatureChecker: an address with code answers EIP-1271,
    ///      any other address must have signed with ECDSA.
    function _isValidSignatureNow(address signer, bytes32 digest, bytes memory signature) internal view returns (bool) {
        if (signer.code.length == 0) return signer != address(0) && _recover(digest, signature) == signer;
        (bool ok, bytes memory result) = signer.staticcall(abi.encodeWithSelector(EIP1271_MAGIC_VALUE, digest, signature));
        return ok && result.length >= 32 && abi.decode(result, (bytes4)) == EIP1271_MAGIC_VALUE;
    }
}

/// @title x402 batch-settlement escrow: a test double for development chains
/// @notice Written for x402-mcp from the x402 `batch-settlement` EVM specification and the ABI the
///         official SDKs call. It is not the audited contract; it gives the embedded chain and anvil
///         something to pay into at the canonical address. Permit2 deposits are out of scope.
/// @dev No constructor and no immutables: its runtime code is placed at the canonical address
///      (genesis state, anvil_setCode) and works with empty storage. The EIP-712 domain is
///      rebuilt from block.chainid and address(this) on every use.
contract x402BatchSettlement is Signatures {
    /// @dev channelId = the EIP-712 hash of this struct, so it is bound to the chain and this address.
    struct ChannelConfig {
        address payer;
        address payerAuthorizer; // EOA that signs vouchers, or 0: the payer signs (EIP-1271 allowed)
        address receiver;
        address receiverAuthorizer; // signs claim batches and refunds; never 0
        address token;
        uint40 withdrawDelay;
        bytes32 salt;
    }
    struct Voucher { ChannelConfig channel; uint128 maxClaimableAmount; } // a cumulative ceiling
    struct VoucherClaim { Voucher voucher; bytes signature; uint128 totalClaimed; } // the new cumulative claim
    struct Channel { uint128 balance; uint128 totalClaimed; } // balance: deposits less withdrawals and refunds
    struct PendingWithdrawal { uint128 amount; uint40 initiatedAt; }
    struct ReceiverTotals { uint128 totalClaimed; uint128 totalSettled; }

    // The spec bounds withdrawDelay to 15 minutes .. 30 days.
    uint40 public constant MIN_WITHDRAW_DELAY = 900;
    uint40 public constant MAX_WITHDRAW_DELAY = 2_592_000;

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant CHANNEL_CONFIG_TYPEHASH = keccak256(
        "ChannelConfig(address payer,address payerAuthorizer,address receiver,address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)"
    );
    // Distinct type hashes: a signature for one action cannot be replayed as another.
    bytes32 private constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint128 maxClaimableAmount)");
    bytes32 private constant REFUND_TYPEHASH = keccak256("Refund(bytes32 channelId,uint256 nonce,uint128 amount)");
    bytes32 private constant CLAIM_ENTRY_TYPEHASH =
        keccak256("ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)");
    bytes32 private constant CLAIM_BATCH_TYPEHASH = keccak256(
        "ClaimBatch(ClaimEntry[] claims)ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)"
    );

    mapping(bytes32 channelId => Channel) public channels;
    mapping(bytes32 channelId => PendingWithdrawal) public pendingWithdrawals;
    mapping(bytes32 channelId => uint256) public refundNonce;
    mapping(address receiver => mapping(address token => ReceiverTotals)) public receivers;
    bool private transient entered;

    event ChannelCreated(bytes32 indexed channelId, ChannelConfig config);
    event ChannelClosed(bytes32 indexed channelId, ChannelConfig config);
    event Deposited(bytes32 indexed channelId, address indexed payer, address collector, uint128 amount);
    event Claimed(bytes32 indexed channelId, address indexed receiver, uint128 amount, uint128 totalClaimed);
    event Settled(address indexed receiver, address indexed token, address indexed sender, uint128 amount);
    event Refunded(bytes32 indexed channelId, address indexed payer, uint128 amount, uint256 nonce);
    event WithdrawInitiated(bytes32 indexed channelId, uint128 amount, uint40 finalizableAt);
    event WithdrawFinalized(bytes32 indexed channelId, address indexed payer, uint128 amount);

    // A collector is arbitrary code: unguarded, it could re-enter deposit and have one transfer
    // counted by two balance checks.
    modifier nonReentrant() {
        require(!entered, "reentrant call");
        entered = true;
        _;
        entered = false;
    }

    /// @notice Anyone may deposit (facilitators sponsor it). `collector` pulls the payer's tokens and
    ///         must deliver exactly `amount` here: this contract's own balance is the proof.
    function deposit(ChannelConfig calldata config, uint128 amount, address collector, bytes calldata collectorData)
        external
        nonReentrant
    {
        require(amount > 0, "zero deposit");
        require(config.payer != address(0) && config.receiver != address(0), "zero payer or receiver");
        require(config.token != address(0) && config.receiverAuthorizer != address(0), "zero token or receiverAuthorizer");
        require(
            config.withdrawDelay >= MIN_WITHDRAW_DELAY && config.withdrawDelay <= MAX_WITHDRAW_DELAY,
            "withdrawDelay out of range"
        );
        bytes32 channelId = getChannelId(config);
        uint256 before = IERC20Minimal(config.token).balanceOf(address(this));
        IDepositCollector(collector).collect(config.payer, config.token, amount, channelId, collectorData);
        require(IERC20Minimal(config.token).balanceOf(address(this)) == before + amount, "collector delivered a wrong amount");
        Channel storage channel = channels[channelId];
        if (channel.balance == 0) emit ChannelCreated(channelId, config);
        channel.balance += amount;
        emit Deposited(channelId, config.payer, collector, amount);
    }

    /// @notice Claims sent by the receiver or its authorizer in person: accounting only, no transfer.
    function claim(VoucherClaim[] calldata voucherClaims) external nonReentrant {
        for (uint256 i; i < voucherClaims.length; ++i) _requireReceiverSide(voucherClaims[i].voucher.channel);
        _claim(voucherClaims, _channelIds(voucherClaims));
    }

    /// @notice Claims relayed by anyone, under one ClaimBatch signature of the receiverAuthorizer
    ///         that every row must share.
    function claimWithSignature(VoucherClaim[] calldata voucherClaims, bytes calldata authorizerSignature)
        external
        nonReentrant
    {
        require(voucherClaims.length > 0, "no claims");
        address authorizer = voucherClaims[0].voucher.channel.receiverAuthorizer;
        for (uint256 i = 1; i < voucherClaims.length; ++i) {
            require(voucherClaims[i].voucher.channel.receiverAuthorizer == authorizer, "mixed receiverAuthorizers");
        }
        bytes32[] memory ids = _channelIds(voucherClaims);
        bytes32 digest = _claimBatchDigest(voucherClaims, ids);
        require(_isValidSignatureNow(authorizer, digest, authorizerSignature), "invalid claim authorizer signature");
        _claim(voucherClaims, ids);
    }

    /// @notice Sends all that was claimed and not yet settled for (receiver, token), in one transfer.
    ///         Permissionless; with nothing to send it does nothing.
    function settle(address receiver, address token) external nonReentrant {
        ReceiverTotals storage totals = receivers[receiver][token];
        uint128 amount = totals.totalClaimed - totals.totalSettled;
        if (amount == 0) return;
        totals.totalSettled = totals.totalClaimed;
        _transfer(token, receiver, amount);
        emit Settled(receiver, token, msg.sender, amount);
    }

    /// @notice The payer's escape hatch: asks for unclaimed funds back, payable after withdrawDelay.
    function initiateWithdraw(ChannelConfig calldata config, uint128 amount) external nonReentrant {
        _requirePayerSide(config);
        bytes32 channelId = getChannelId(config);
        Channel storage channel = channels[channelId];
        require(amount > 0, "zero withdrawal");
        require(amount <= channel.balance - channel.totalClaimed, "withdrawal exceeds unclaimed balance");
        require(pendingWithdrawals[channelId].initiatedAt == 0, "withdrawal already pending");
        pendingWithdrawals[channelId] = PendingWithdrawal(amount, uint40(block.timestamp));
        emit WithdrawInitiated(channelId, amount, uint40(block.timestamp) + config.withdrawDelay);
    }

    /// @notice Pays the pending withdrawal, capped to what is still unclaimed: vouchers the receiver
    ///         claimed during the delay keep their funds.
    function finalizeWithdraw(ChannelConfig calldata config) external nonReentrant {
        _requirePayerSide(config);
        bytes32 channelId = getChannelId(config);
        PendingWithdrawal memory pending = pendingWithdrawals[channelId];
        require(pending.initiatedAt != 0, "no withdrawal pending");
        require(block.timestamp >= uint256(pending.initiatedAt) + config.withdrawDelay, "withdrawDelay has not elapsed");
        delete pendingWithdrawals[channelId];
        Channel storage channel = channels[channelId];
        uint128 amount = _min(pending.amount, channel.balance - channel.totalClaimed);
        channel.balance -= amount;
        if (amount > 0) _transfer(config.token, config.payer, amount);
        emit WithdrawFinalized(channelId, config.payer, amount);
        if (channel.balance == 0) emit ChannelClosed(channelId, config);
    }

    /// @notice A cooperative refund sent by the receiver or its authorizer in person.
    function refund(ChannelConfig calldata config, uint128 amount) external nonReentrant {
        _requireReceiverSide(config);
        _refund(config, getChannelId(config), amount);
    }

    /// @notice A cooperative refund relayed by anyone, under the receiverAuthorizer's Refund signature
    ///         for the channel's current nonce.
    function refundWithSignature(ChannelConfig calldata config, uint128 amount, uint256 nonce, bytes calldata signature)
        external
        nonReentrant
    {
        bytes32 channelId = getChannelId(config);
        require(nonce == refundNonce[channelId], "wrong refund nonce");
        bytes32 digest = getRefundDigest(channelId, nonce, amount);
        require(_isValidSignatureNow(config.receiverAuthorizer, digest, signature), "invalid refund signature");
        _refund(config, channelId, amount);
    }

    /// @notice Runs each call on this contract in order, all or nothing (a claim, then a refund).
    function multicall(bytes[] calldata data) external returns (bytes[] memory results) {
        results = new bytes[](data.length);
        for (uint256 i; i < data.length; ++i) {
            (bool ok, bytes memory result) = address(this).delegatecall(data[i]);
            if (!ok) {
                assembly { revert(add(result, 0x20), mload(result)) }
            }
            results[i] = result;
        }
    }

    function getChannelId(ChannelConfig calldata config) public view returns (bytes32) {
        // Every field is static, so abi.encode is EIP-712's encodeData.
        return _hashTypedData(keccak256(abi.encode(CHANNEL_CONFIG_TYPEHASH, config)));
    }

    function getVoucherDigest(bytes32 channelId, uint128 maxClaimableAmount) public view returns (bytes32) {
        return _hashTypedData(keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, maxClaimableAmount)));
    }

    function getRefundDigest(bytes32 channelId, uint256 nonce, uint128 amount) public view returns (bytes32) {
        return _hashTypedData(keccak256(abi.encode(REFUND_TYPEHASH, channelId, nonce, amount)));
    }

    function getClaimBatchDigest(VoucherClaim[] calldata voucherClaims) external view returns (bytes32) {
        return _claimBatchDigest(voucherClaims, _channelIds(voucherClaims));
    }

    function _claim(VoucherClaim[] calldata voucherClaims, bytes32[] memory ids) private {
        for (uint256 i; i < voucherClaims.length; ++i) {
            VoucherClaim calldata entry = voucherClaims[i];
            ChannelConfig calldata config = entry.voucher.channel;
            _requireVoucherSignature(config, ids[i], entry.voucher.maxClaimableAmount, entry.signature);
            require(entry.totalClaimed <= entry.voucher.maxClaimableAmount, "claim exceeds voucher ceiling");
            Channel storage channel = channels[ids[i]];
            require(entry.totalClaimed <= channel.balance, "claim exceeds channel balance");
            // Cumulative amounts: an older or replayed voucher adds nothing, it is not a second charge.
            if (entry.totalClaimed <= channel.totalClaimed) continue;
            uint128 added = entry.totalClaimed - channel.totalClaimed;
            channel.totalClaimed = entry.totalClaimed;
            receivers[config.receiver][config.token].totalClaimed += added;
            emit Claimed(ids[i], config.receiver, added, entry.totalClaimed);
        }
    }

    /// @dev The nonce advances first, so even a refund that moves nothing uses it up. A pending
    ///      withdrawal shrinks by what was refunded, and ends when the refund covers it.
    function _refund(ChannelConfig calldata config, bytes32 channelId, uint128 amount) private {
        require(amount > 0, "zero refund");
        uint256 nonce = refundNonce[channelId]++;
        Channel storage channel = channels[channelId];
        uint128 refunded = _min(amount, channel.balance - channel.totalClaimed);
        if (refunded == 0) return;
        channel.balance -= refunded;
        PendingWithdrawal storage pending = pendingWithdrawals[channelId];
        if (pending.initiatedAt != 0) {
            if (refunded >= pending.amount) delete pendingWithdrawals[channelId];
            else pending.amount -= refunded;
        }
        _transfer(config.token, config.payer, refunded);
        emit Refunded(channelId, config.payer, refunded, nonce);
        if (channel.balance == 0) emit ChannelClosed(channelId, config);
    }

    /// @dev A non-zero payerAuthorizer is an EOA checked by ECDSA alone (verifiable without RPC);
    ///      otherwise the payer itself signs, and may be an EIP-1271 wallet.
    function _requireVoucherSignature(ChannelConfig calldata config, bytes32 channelId, uint128 ceiling, bytes calldata sig)
        private
        view
    {
        bytes32 digest = getVoucherDigest(channelId, ceiling);
        bool valid = config.payerAuthorizer != address(0)
            ? _recover(digest, sig) == config.payerAuthorizer
            : _isValidSignatureNow(config.payer, digest, sig);
        require(valid, "invalid voucher signature");
    }

    function _requirePayerSide(ChannelConfig calldata config) private view {
        bool authorizer = config.payerAuthorizer != address(0) && msg.sender == config.payerAuthorizer;
        require(msg.sender == config.payer || authorizer, "caller is neither payer nor payerAuthorizer");
    }

    function _requireReceiverSide(ChannelConfig calldata config) private view {
        bool allowed = msg.sender == config.receiver || msg.sender == config.receiverAuthorizer;
        require(allowed, "caller is neither receiver nor receiverAuthorizer");
    }

    function _channelIds(VoucherClaim[] calldata voucherClaims) private view returns (bytes32[] memory ids) {
        ids = new bytes32[](voucherClaims.length);
        for (uint256 i; i < voucherClaims.length; ++i) ids[i] = getChannelId(voucherClaims[i].voucher.channel);
    }

    function _claimBatchDigest(VoucherClaim[] calldata claims, bytes32[] memory ids) private view returns (bytes32) {
        // EIP-712 encodes an array as the hash of its entries' concatenated struct hashes.
        bytes32[] memory entries = new bytes32[](claims.length);
        for (uint256 i; i < claims.length; ++i) {
            entries[i] = keccak256(
                abi.encode(CLAIM_ENTRY_TYPEHASH, ids[i], claims[i].voucher.maxClaimableAmount, claims[i].totalClaimed)
            );
        }
        return _hashTypedData(keccak256(abi.encode(CLAIM_BATCH_TYPEHASH, keccak256(abi.encodePacked(entries)))));
    }

    function _hashTypedData(bytes32 structHash) private view returns (bytes32) {
        bytes32 domainSeparator = keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("x402 Batch Settlement"), keccak256("1"), block.chainid, address(this))
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash));
    }

    function _transfer(address token, address to, uint128 amount) private {
        // Tolerates tokens that return nothing; refuses those that return false.
        (bool ok, bytes memory result) = token.call(abi.encodeCall(IERC20Minimal.transfer, (to, amount)));
        require(ok && (result.length == 0 || abi.decode(result, (bool))), "token transfer failed");
    }

    function _min(uint128 a, uint128 b) private pure returns (uint128) {
        return a < b ? a : b;
    }
}

/// @title Deposits by ERC-3009 receiveWithAuthorization, for x402BatchSettlement
/// @notice The payer signs ReceiveWithAuthorization(to = this collector, nonce =
///         keccak256(abi.encode(channelId, salt))): the nonce binds the authorization to one channel,
///         and only this contract can redeem it. The tokens go on to the settlement contract.
contract ERC3009DepositCollector {
    /// @dev The canonical x402BatchSettlement, as a constant: this contract needs no storage either.
    address public constant SETTLEMENT = 0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003;

    /// @param collectorData abi.encode(uint256 validAfter, uint256 validBefore, uint256 salt, bytes signature)
    function collect(address payer, address token, uint256 amount, bytes32 channelId, bytes calldata collectorData)
        external
    {
        // Any other caller could redeem an authorization it saw in the mempool and keep the tokens.
        require(msg.sender == SETTLEMENT, "caller is not the settlement contract");
        (uint256 validAfter, uint256 validBefore, uint256 salt, bytes memory signature) =
            abi.decode(collectorData, (uint256, uint256, uint256, bytes));
        bytes32 nonce = keccak256(abi.encode(channelId, salt));
        IERC3009Receive(token).receiveWithAuthorization(payer, address(this), amount, validAfter, validBefore, nonce, signature);
        require(IERC20Minimal(token).transfer(SETTLEMENT, amount), "forwarding to the settlement contract failed");
    }
}
