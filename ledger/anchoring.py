"""The anchorer: seals checkpoints every N events or T seconds and anchors their roots on chain.

Each anchoring is journaled: the signed transaction is recorded before it is sent and the block
after it is mined. A restart therefore resends the recorded transaction (same nonce, same hash)
instead of making a second one, and a crash can neither anchor a checkpoint twice nor lose it.
While the chain is unreachable, appends go on and checkpoints queue; they are anchored in order
when it is back.
"""

from __future__ import annotations

import hashlib
import logging
import stat
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError as DBAPIIntegrityError

from contracts.chain import Chain, connect
from contracts.client import AnchorRegistryClient
from contracts.errors import AnchorRejectedError, ChainError, ChainUnavailableError
from contracts.records import AnchorRecord, PreparedTx

from . import contract_address
from .anchor_checks import (
    check_log_against_chain,
    forget_vanished,
    newest_still_there,
    require_registry_code,
)
from .anchor_store import AnchorStore, StoredAnchor
from .errors import ConfigurationError, KeyFileError
from .log import Ledger
from .settings import LedgerSettings
from .store import StoredCheckpoint

log = logging.getLogger(__name__)


def log_id_for(origin: str) -> bytes:
    """The bytes32 a log is anchored under: SHA-256 of its checkpoint origin line."""
    return hashlib.sha256(origin.encode("utf-8")).digest()


@dataclass
class AnchorReport:
    """What one pass of the anchorer did."""

    sealed: StoredCheckpoint | None = None
    anchored: list[AnchorRecord] = field(default_factory=list)
    queued: int = 0
    error: str | None = None


def connect_chain(settings: LedgerSettings) -> Chain:
    """The configured chain: a JSON-RPC node by URL, else the embedded one in data_dir/chain."""
    if settings.rpc_url is None:
        return connect(data_dir=settings.chain_dir)
    return connect(settings.rpc_url, keys=[_anchor_key(settings)])


def _anchor_key(settings: LedgerSettings) -> bytes:
    path = settings.anchor_key_file or settings.data_dir / "anchor.key"
    if not path.is_file():
        raise ConfigurationError(
            f"anchoring on {settings.rpc_url} needs the anchorer's private key (hex) in {path}"
        )
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} is readable by others; run: chmod 600 {path}")
    text = path.read_text(encoding="ascii").strip().removeprefix("0x")
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise KeyFileError(f"{path} does not hold a hex private key") from exc
    if len(key) != 32:
        raise KeyFileError(f"{path} does not hold a 32-byte private key")
    return key


def open_registry(ledger: Ledger, chain: Chain) -> AnchorRegistryClient:
    """The registry to anchor in: the configured one, the one deployed before, or a new one."""
    account = chain.accounts[-1] if chain.accounts else None
    if account is None:
        raise ConfigurationError("no account to sign anchors with")
    address = ledger.settings.contract_address or ledger.store.get_meta(
        f"registry:{chain.chain_id}"
    )
    if address is None:
        address = AnchorRegistryClient.deploy(chain, account)
        client = AnchorRegistryClient.at(chain, address, account)
        client.assign_log(log_id_for(ledger.origin), account.address)
        address = ledger.store.set_meta_once(f"registry:{chain.chain_id}", address)
    client = AnchorRegistryClient(chain, address, account)
    require_registry_code(client, log_id_for(ledger.origin))  # a reset chain: say what to do
    contract_address.remember(ledger.settings.data_dir, address)  # for verify-receipt
    return client


def preflight(settings: LedgerSettings) -> None:
    """What a service checks before it starts: the database against the log's witness
    (``Ledger.open``) and, with a chain node configured, against the chain's latest anchor of
    the log. A chain that cannot be reached is only warned about: the anchorer checks again
    when it connects."""
    ledger = Ledger.open(settings)
    try:
        if settings.rpc_url is None:
            return  # the embedded chain lives in the data dir, restored with it
        anchorer = Anchorer(ledger)
        try:
            anchorer.connect()
        except ChainUnavailableError as exc:
            log.warning("chain unavailable at start-up; checked when it is back: %s", exc)
        finally:
            anchorer.close()
    finally:
        ledger.close()


class Anchorer:
    """Seals and anchors one ledger's checkpoints; safe to kill and restart at any point."""

    def __init__(self, ledger: Ledger, registry: AnchorRegistryClient | None = None) -> None:
        self.ledger = ledger
        self.settings = ledger.settings
        self.anchors = AnchorStore(ledger.store)
        self.registry = registry
        self.log_id = log_id_for(ledger.origin)

    # -- sealing ------------------------------------------------------------------------------

    def seal_if_due(
        self, now: float | None = None, *, force: bool = False
    ) -> StoredCheckpoint | None:
        """Seal a checkpoint when N events or T seconds have passed since the last one."""
        now = time.time() if now is None else now
        size = self.ledger.tree_size()
        last = self.ledger.latest_checkpoint()
        last_size = 0 if last is None else last.tree_size
        if size == last_size:
            return None
        # The clock for T starts at the last checkpoint, or at the first event of a new log.
        since = last.created_at if last is not None else self.ledger.leaves(0, 1)[0].appended_at
        due = (
            force
            or size - last_size >= self.settings.checkpoint_every
            or now - since >= self.settings.checkpoint_interval
        )
        return self.ledger.checkpoint() if due else None

    # -- anchoring ----------------------------------------------------------------------------

    def queued(self) -> list[StoredCheckpoint]:
        """Sealed checkpoints not yet anchored, oldest first (the empty tree is never anchored)."""
        settled = self.anchors.latest_settled()
        return self.ledger.store.checkpoints(after_size=0 if settled is None else settled)

    def anchor_queued(self) -> list[AnchorRecord]:
        """Anchor every queued checkpoint in order; ChainUnavailableError leaves the rest queued.

        First the chain is re-checked: anchors it lost are forgotten (and so queue again), and
        a chain that anchors more of the log than the database holds stops the pass
        (RollbackError).
        """
        registry = self.connect()
        if not newest_still_there(self.anchors, registry):
            forget_vanished(self.anchors, registry)
            require_registry_code(registry, self.log_id)
            check_log_against_chain(self.ledger, registry, self.log_id)
        anchored: list[AnchorRecord] = []
        prepared = self.anchors.prepared()
        if prepared is not None or self.queued():
            require_registry_code(registry, self.log_id)  # nothing is sent to an empty address
        if prepared is not None:
            record = self._finish(registry, prepared)
            if record is not None:
                anchored.append(record)
        for checkpoint in self.queued():
            if self.anchors.prepared() is not None:
                break  # an unfinished one from above: it goes first, next pass
            record = self._anchor(registry, checkpoint)
            if record is not None:
                anchored.append(record)
        return anchored

    def run_once(self, *, force_seal: bool = False) -> AnchorReport:
        report = AnchorReport(sealed=self.seal_if_due(force=force_seal))
        try:
            report.anchored = self.anchor_queued()
        except ChainUnavailableError as exc:
            report.error = str(exc)
            log.warning("chain unavailable, checkpoints stay queued: %s", exc)
        except ChainError as exc:
            # Not a passing outage (a rejected or conflicting anchor): keep it visible and queued.
            report.error = str(exc)
            log.error("anchoring failed, checkpoints stay queued: %s", exc)
        report.queued = len(self.queued())
        return report

    def run(self, stop: threading.Event, *, poll: float = 0.5) -> None:
        """Seal and anchor until ``stop`` is set."""
        while not stop.is_set():
            try:
                report = self.run_once()
            except Exception:  # the loop must outlive a bad pass (a database hiccup, say)
                log.exception("anchoring pass failed; retrying")
                stop.wait(min(poll * 10, 5.0))
                continue
            stop.wait(poll if report.error is None else min(poll * 10, 5.0))

    def close(self) -> None:
        """Release the chain connection (the embedded chain's files and lock)."""
        if self.registry is not None:
            self.registry.chain.close()
            self.registry = None

    def connect(self) -> AnchorRegistryClient:
        """The registry client, connecting (and deploying on first use) if need be.

        On connecting, the log is checked against the chain before anything is built on it:
        lost anchors are forgotten, and a database behind the chain is refused.
        """
        if self.registry is None:
            registry = open_registry(self.ledger, connect_chain(self.settings))
            try:
                forget_vanished(self.anchors, registry)
                check_log_against_chain(self.ledger, registry, self.log_id)
            except BaseException:
                registry.chain.close()
                raise
            self.registry = registry
        return self.registry

    def _anchor(
        self, registry: AnchorRegistryClient, checkpoint: StoredCheckpoint
    ) -> AnchorRecord | None:
        try:
            tx = registry.prepare_anchor(self.log_id, checkpoint.tree_size, checkpoint.root_hash)
        except AnchorRejectedError as exc:
            if exc.error_name == "StaleTreeSize":
                return self._adopt(registry, checkpoint)
            if exc.error_name == "NotLogAnchorer":
                account = registry.account.address if registry.account else "?"
                raise ChainError(
                    f"this account ({account}) may not anchor log 0x{self.log_id.hex()} "
                    f"({self.ledger.origin}): the registry owner must assign it with assignLog"
                ) from exc
            raise
        try:
            self.anchors.record_prepared(
                tree_size=checkpoint.tree_size,
                chain_id=registry.chain.chain_id,
                contract=registry.address,
                nonce=tx.nonce,
                tx_hash=tx.tx_hash,
                raw_tx=tx.raw,
                now=time.time(),
            )
        except DBAPIIntegrityError:
            # Another anchorer process journaled this checkpoint first; ours is never sent.
            log.warning("checkpoint %d is being anchored by another process", checkpoint.tree_size)
            return None
        registry.send(tx)
        return self._confirm(
            checkpoint.tree_size, registry.wait(tx.tx_hash, self.settings.anchor_timeout)
        )

    def _finish(self, registry: AnchorRegistryClient, pending: StoredAnchor) -> AnchorRecord | None:
        """Complete an anchoring a previous run recorded but may not have sent or confirmed."""
        checkpoint = self.ledger.store.checkpoint_at(pending.tree_size)
        if checkpoint is None or pending.raw_tx is None or pending.nonce is None:
            raise ChainError(f"the journal of anchoring size {pending.tree_size} is incomplete")
        try:
            record = registry.find_receipt(pending.tx_hash)
            if record is None and pending.nonce > registry.next_nonce():
                # The chain lost the transactions before it (it went back in time): this one
                # cannot be mined until others fill the gap. The checkpoint is prepared anew.
                log.warning(
                    "journaled anchor of size %d is past the chain's nonce; redone",
                    pending.tree_size,
                )
                self.anchors.discard_prepared(pending.tree_size)
                return None
            if record is None:
                tx = PreparedTx(tx_hash=pending.tx_hash, raw=pending.raw_tx, nonce=pending.nonce)
                registry.send(tx)
                record = registry.wait(pending.tx_hash, self.settings.anchor_timeout)
        except AnchorRejectedError as exc:
            # Never mined (its nonce went elsewhere) or mined and reverted (the size was
            # anchored meanwhile): this transaction is dead. The chain may hold the anchor anyway.
            log.warning("journaled anchor of size %d failed (%s)", pending.tree_size, exc)
            self.anchors.discard_prepared(pending.tree_size)
            return self._adopt(registry, checkpoint)
        return self._confirm(pending.tree_size, record)

    def _adopt(
        self, registry: AnchorRegistryClient, checkpoint: StoredCheckpoint
    ) -> AnchorRecord | None:
        """The chain already holds an anchor at or past this size: record ours if it is there.

        Found with the same root, it is confirmed; with another root, the log was forked (or
        two logs share an origin) and anchoring stops loudly. Absent while the chain is past
        this size, the checkpoint can no longer be anchored: it is marked superseded, and the
        later checkpoints (each a consistent extension) carry its events.
        """
        found = registry.anchors(self.log_id, 0, tree_size=checkpoint.tree_size)
        if found:
            record = found[0]
            if record.root_hash != checkpoint.root_hash:
                raise ChainError(
                    f"the chain anchors size {checkpoint.tree_size} with another root: "
                    "two logs share this origin, or the log was forked"
                )
            return self._confirm(checkpoint.tree_size, record)
        latest = registry.latest(self.log_id)
        if latest is None or latest.tree_size < checkpoint.tree_size:
            return None  # not stale after all (a reorg?): the next pass prepares it anew
        log.warning("checkpoint %d was passed on chain; marked superseded", checkpoint.tree_size)
        self.anchors.record_superseded(checkpoint.tree_size, time.time())
        return None

    def _confirm(self, tree_size: int, record: AnchorRecord) -> AnchorRecord:
        if (record.tree_size, record.log_id) != (tree_size, self.log_id):
            raise ChainError(f"transaction anchored {record.tree_size}, expected {tree_size}")
        self.anchors.record_confirmed(
            tree_size,
            record.to_json(),
            record.block_number,
            time.time(),
            chain_id=record.chain_id,
            contract=record.contract,
            tx_hash=record.tx_hash,
        )
        return record
