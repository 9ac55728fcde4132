// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title AnchorRegistry
/// @notice Anchors signed checkpoint roots of RFC 9162 Merkle logs. For each log it keeps
///         only the latest (treeSize, rootHash) and when it was anchored; every earlier
///         anchor stays findable through its `Anchored` event (indexed by logId and
///         treeSize) or its transaction receipt, so no storage grows with history.
/// @dev    Gas per anchor does not depend on the tree size: one anchorer lookup, two
///         storage slots per log (the root hash and one packed slot of three uint64),
///         one event.
contract AnchorRegistry {
    struct Anchor {
        bytes32 rootHash;
        // These three share one storage slot.
        uint64 treeSize;
        uint64 timestamp;
        uint64 blockNumber;
    }

    address public owner;
    mapping(address account => bool allowed) private _anchorers;
    mapping(bytes32 logId => Anchor latestAnchor) private _latest;

    event Anchored(
        bytes32 indexed logId,
        uint64 indexed treeSize,
        bytes32 rootHash,
        uint64 timestamp,
        address anchorer
    );
    event AnchorerAdded(address indexed account);
    event AnchorerRemoved(address indexed account);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner(address caller);
    error NotAnchorer(address caller);
    error StaleTreeSize(bytes32 logId, uint64 latest, uint64 given);
    error ZeroAddress();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor() {
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    /// @notice Record that `logId` has a checkpoint of `treeSize` leaves with `rootHash`.
    /// @dev Sizes must strictly grow: an equal size (even with the same root) or a smaller
    ///      one is a rollback or a replay and reverts with StaleTreeSize.
    function anchor(bytes32 logId, uint64 treeSize, bytes32 rootHash) external {
        if (!_anchorers[msg.sender]) revert NotAnchorer(msg.sender);
        Anchor storage current = _latest[logId];
        uint64 latestSize = current.treeSize;
        if (treeSize <= latestSize) revert StaleTreeSize(logId, latestSize, treeSize);
        uint64 nowTs = uint64(block.timestamp);
        current.rootHash = rootHash;
        current.treeSize = treeSize;
        current.timestamp = nowTs;
        current.blockNumber = uint64(block.number);
        emit Anchored(logId, treeSize, rootHash, nowTs, msg.sender);
    }

    /// @notice The latest anchor of `logId`; all zero when the log was never anchored.
    function latest(bytes32 logId)
        external
        view
        returns (uint64 treeSize, bytes32 rootHash, uint64 timestamp, uint64 blockNumber)
    {
        Anchor storage current = _latest[logId];
        return (current.treeSize, current.rootHash, current.timestamp, current.blockNumber);
    }

    function isAnchorer(address account) external view returns (bool) {
        return _anchorers[account];
    }

    /// @dev Idempotent: adding an existing anchorer changes nothing and emits nothing.
    function addAnchorer(address account) external onlyOwner {
        if (account == address(0)) revert ZeroAddress();
        if (_anchorers[account]) return;
        _anchorers[account] = true;
        emit AnchorerAdded(account);
    }

    /// @dev Idempotent: removing an account that is not an anchorer changes nothing.
    function removeAnchorer(address account) external onlyOwner {
        if (!_anchorers[account]) return;
        _anchorers[account] = false;
        emit AnchorerRemoved(account);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }
}
