// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title AnchorRegistry
/// @notice Anchors signed checkpoint roots of RFC 9162 Merkle logs. The owner binds each log
///         to the one account that may anchor it. For each log the registry keeps only the
///         latest (treeSize, rootHash) and when it was anchored; every earlier anchor stays
///         findable through its `Anchored` event (indexed by logId and treeSize) or its
///         transaction receipt, so no storage grows with history.
/// @dev    Log ids are public and predictable (the ledger uses the SHA-256 of the log's
///         origin line), so the right to anchor is per log: with one list of anchorers, any
///         member could anchor another member's log id, for instance at treeSize 2**64-1,
///         freezing that log for good.
///
///         Three storage slots per log: the root hash; the tree size, timestamp and block
///         number packed in one; the anchorer with the block it was assigned in. An anchor
///         reads the third and rewrites the other two, so gas does not depend on the tree
///         size. The anchorer is not packed with the tree size on purpose: that would move
///         timestamp and block number into a slot of their own, rewritten by every anchor
///         (measured: about 3,100 gas more per anchor than reading a slot that changes only
///         on assignment).
contract AnchorRegistry {
    struct Log {
        bytes32 rootHash;
        // These three share one storage slot.
        uint64 treeSize;
        uint64 timestamp;
        uint64 blockNumber;
        // These two share one slot, which changes only when the owner assigns the log.
        address anchorer;
        uint64 assignedBlock;
    }

    address public owner;
    mapping(bytes32 logId => Log state) private _logs;

    event Anchored(
        bytes32 indexed logId,
        uint64 indexed treeSize,
        bytes32 rootHash,
        uint64 timestamp,
        address anchorer
    );
    event LogAssigned(bytes32 indexed logId, address indexed anchorer);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner(address caller);
    error NotLogAnchorer(bytes32 logId, address caller);
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
    /// @dev Only `anchorerOf(logId)` may call this (NotLogAnchorer otherwise; an unassigned
    ///      log has none). Sizes must strictly grow: an equal size (even with the same root)
    ///      or a smaller one is a rollback or a replay and reverts with StaleTreeSize.
    function anchor(bytes32 logId, uint64 treeSize, bytes32 rootHash) external {
        Log storage state = _logs[logId];
        if (msg.sender != state.anchorer) revert NotLogAnchorer(logId, msg.sender);
        uint64 latestSize = state.treeSize;
        if (treeSize <= latestSize) revert StaleTreeSize(logId, latestSize, treeSize);
        uint64 nowTs = uint64(block.timestamp);
        state.rootHash = rootHash;
        state.treeSize = treeSize;
        state.timestamp = nowTs;
        state.blockNumber = uint64(block.number);
        emit Anchored(logId, treeSize, rootHash, nowTs, msg.sender);
    }

    /// @notice The latest anchor of `logId`; all zero when the log was never anchored.
    function latest(bytes32 logId)
        external
        view
        returns (uint64 treeSize, bytes32 rootHash, uint64 timestamp, uint64 blockNumber)
    {
        Log storage state = _logs[logId];
        return (state.treeSize, state.rootHash, state.timestamp, state.blockNumber);
    }

    /// @notice The one account that may anchor `logId`; address(0) when nobody may.
    function anchorerOf(bytes32 logId) external view returns (address) {
        return _logs[logId].anchorer;
    }

    /// @notice `anchorerOf(logId)` and the number of the block it was assigned in (0 if the
    ///         log was never assigned). A verifier of an anchor made after that block learns
    ///         who was allowed to make it from the current state alone, without the state as
    ///         of the anchor's block, which most nodes prune.
    function assignment(bytes32 logId)
        external
        view
        returns (address anchorer, uint64 assignedBlock)
    {
        Log storage state = _logs[logId];
        return (state.anchorer, state.assignedBlock);
    }

    /// @notice Bind `logId` to `anchorer`, the only account that may anchor it from now on.
    /// @dev Reassigning (to rotate a key, say) keeps the log's anchors: the new anchorer goes
    ///      on from the latest tree size. Assigning address(0) revokes the log's anchorer
    ///      until the owner assigns another. Every call emits LogAssigned, even one that
    ///      changes nothing, so the events are a complete record of the owner's decisions.
    function assignLog(bytes32 logId, address anchorer) external onlyOwner {
        Log storage state = _logs[logId];
        state.anchorer = anchorer;
        state.assignedBlock = uint64(block.number);
        emit LogAssigned(logId, anchorer);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }
}
