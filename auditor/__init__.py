"""auditor: the regulator's independent check of a consent-ledger deployment.

It trusts neither the platform's database nor its API: it reads the service's public log
endpoints over HTTP and the anchors on chain over JSON-RPC, and uses only ``hashing`` and
``contracts`` of this project (an import-linter contract keeps ``ledger`` and ``consent_api``
out).

* ``integrity.audit_integrity`` -- the integrity audit: signatures, anchors, forks,
  consistency, leaves against anchored roots; incremental from its state directory;
* ``findings`` -- ``Finding`` (stable ``FindingCode``), ``Report``;
* ``fetch`` -- the HTTP client; ``state`` -- the state file; ``anchors`` -- chain and claimed
  anchors; ``leaves`` and ``locate`` -- rehashing leaves and locating bad ones; ``lag`` --
  anchoring lag; ``cli`` -- the ``auditor`` command; ``errors`` -- why an audit could not run.
"""
