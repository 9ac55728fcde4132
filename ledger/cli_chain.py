"""The chain side of ``consent-ledger``: anchor, list anchors, write and verify receipts."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from contracts.chain import connect
from contracts.client import AnchorRegistryClient

from . import contract_address, offline
from .anchoring import Anchorer
from .cli_files import load_key, read_json
from .errors import ConfigurationError
from .receipts import build_receipt, verify_receipt
from .witnessing import Witnessing


def _out(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def cmd_anchor(args: argparse.Namespace, ledger_opener: Any) -> int:
    ledger = ledger_opener(args)
    anchorer = Anchorer(ledger)
    witnessing = Witnessing.from_settings(ledger)
    try:
        if args.watch:
            stop = threading.Event()
            witness_thread = None
            if witnessing is not None:
                witness_thread = threading.Thread(
                    target=witnessing.run, args=(stop,), name="witnessing", daemon=True
                )
                witness_thread.start()
            try:
                anchorer.run(stop)
            except KeyboardInterrupt:
                stop.set()
            if witness_thread is not None:
                witness_thread.join(timeout=30)
            return 0
        report = anchorer.run_once(force_seal=True)
        if witnessing is not None:
            witnessing.run_once()
        _out(
            {
                "sealed": None if report.sealed is None else report.sealed.tree_size,
                "anchored": [record.to_dict() for record in report.anchored],
                "queued": report.queued,
                "error": report.error,
            }
        )
        return 0 if report.error is None else 3
    finally:
        if witnessing is not None:
            witnessing.close()
        anchorer.close()
        ledger.close()


def cmd_receipt(args: argparse.Namespace, ledger_opener: Any) -> int:
    ledger = ledger_opener(args)
    try:
        _out(build_receipt(ledger, Anchorer(ledger).anchors, args.leaf_index))
    finally:
        ledger.close()
    return 0


def cmd_verify_receipt(args: argparse.Namespace) -> int:
    verifier = load_key(args.key)
    doc = read_json(
        args.receipt,
        "receipt",
        "consent-ledger receipt --leaf-index N > receipt.json writes one; residents get theirs "
        "in GET /v1/me/access-history",
    )
    chain = None
    if args.offline == bool(args.rpc_url or args.chain_dir):
        raise ConfigurationError(
            "say where to check the anchor: --rpc-url URL or --chain-dir DIR (with --contract), "
            "or --offline to check only the proof, the signature and the anchor's root"
        )
    if args.offline and args.contract:
        raise ConfigurationError(
            "--contract is for the on-chain check; it means nothing with --offline"
        )
    contract = None
    if not args.offline:
        contract = _contract(args)
        chain = (
            connect(args.rpc_url)
            if args.rpc_url
            else connect(data_dir=Path(args.chain_dir), create=False)
        )
    try:
        registry = (
            None if chain is None or contract is None else AnchorRegistryClient.at(chain, contract)
        )
        policy = (
            None
            if args.witness_policy is None
            else offline.load_witness_policy(args.witness_policy)
        )
        check = verify_receipt(doc, verifier, registry, policy)
    finally:
        if chain is not None:
            chain.close()
    _out(
        {
            "verified": "receipt",
            "leaf_index": check.leaf_index,
            "tree_size": check.checkpoint.tree_size,
            "anchor": "checked on chain" if check.chain_checked else "not checked on chain",
            "chain_id": check.anchor.chain_id,
            "block_number": check.anchor.block_number,
            **(
                {}
                if check.witnesses is None
                else {"witnesses": offline.witnesses_out(check.witnesses)}
            ),
        }
    )
    if not check.chain_checked:
        print(
            "consent-ledger: note: the anchor's transaction and block were not checked; "
            "give --rpc-url (or --chain-dir) and --contract for that",
            file=sys.stderr,
        )
    return 0


def _contract(args: argparse.Namespace) -> str:
    """The registry to check against: --contract, or the one this data dir anchors in."""
    if args.contract:
        return contract_address.checked(args.contract)
    remembered = contract_address.recalled(args.data_dir)
    if remembered is None:
        raise ConfigurationError(
            "checking the anchor on chain needs the AnchorRegistry's address (--contract "
            f"ADDRESS), and {args.data_dir / contract_address.FILE} does not exist: "
            + contract_address.WHERE
        )
    print(
        f"consent-ledger: note: registry {remembered} from "
        f"{args.data_dir / contract_address.FILE} (written by consent-ledger anchor)",
        file=sys.stderr,
    )
    return remembered


def register(sub: Any, common: argparse.ArgumentParser, ledger_opener: Any) -> None:
    text = (
        "seal a checkpoint and anchor every queued one on chain (the embedded chain in "
        "DATA_DIR/chain, or CONSENT_LEDGER_RPC_URL); the registry's address is kept in "
        "DATA_DIR/contract-address for verify-receipt"
    )
    anchor = sub.add_parser("anchor", parents=[common], help=text, description=text)
    anchor.add_argument(
        "--watch", action="store_true", help="keep sealing and anchoring until interrupted"
    )
    anchor.set_defaults(handler=lambda a: cmd_anchor(a, ledger_opener))
    text = (
        "print the receipt of one event: the event, its inclusion proof, the signed checkpoint "
        "and that checkpoint's anchor (check it with verify-receipt)"
    )
    receipt = sub.add_parser("receipt", parents=[common], help=text, description=text)
    receipt.add_argument(
        "--leaf-index", type=int, required=True, help="the event's leaf (0-based, as appended)"
    )
    receipt.set_defaults(handler=lambda a: cmd_receipt(a, ledger_opener))
    check = sub.add_parser(
        "verify-receipt",
        help="check a receipt with no database: proof and signature offline, anchor on chain",
        description="Check a receipt. The key, the chain and the contract are the verifier's "
        "own; nothing in the receipt is trusted.",
    )
    check.add_argument("receipt", help="receipt JSON file")
    check.add_argument("--key", required=True, help="the log's public key, or a file holding it")
    check.add_argument("--rpc-url", help="JSON-RPC node to check the anchor against")
    check.add_argument("--chain-dir", help="or: an embedded chain's data directory")
    check.add_argument(
        "--contract",
        help="the AnchorRegistry address you trust (default: the one in "
        "DATA_DIR/contract-address, which consent-ledger anchor writes)",
    )
    check.add_argument(
        "--data-dir",
        type=Path,
        default=Path("var"),
        help="where to find contract-address when --contract is not given (default: var)",
    )
    check.add_argument(
        "--offline",
        action="store_true",
        help="check proof, signature and anchored root only; the chain is not asked",
    )
    check.add_argument(
        "--witness-policy",
        help="C2SP tlog-policy file: the witnesses whose cosignatures the checkpoint needs",
    )
    check.set_defaults(handler=cmd_verify_receipt)
