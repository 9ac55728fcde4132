"""auditor: the regulator's independent check of a consent-ledger deployment.

It trusts neither the platform's database nor its API: it reads the service's public log
endpoints over HTTP and the anchors on chain over JSON-RPC, and uses only ``hashing`` and
``contracts`` of this project (an import-linter contract keeps ``ledger`` and ``consent_api``
out).

* ``integrity.audit_integrity`` -- the integrity audit: signatures, anchors, forks,
  consistency, leaves against anchored roots; incremental from its state directory; given a
  ``lawfulness.Lawfulness``, it also replays the verified leaves as they stream past;
* ``rules`` -- the consent rules, implemented again; ``replay_consents`` and ``replay`` --
  judging each leaf by them (log order and effective times, consents and their narrowings,
  uncovered permits and releases, grants reused or expired, break-glass); ``widening`` --
  whether a new version of a consent permits more; ``policy`` -- the regulator's limits
  (clock tolerance, justification window, grant lifetime); ``replay_state`` --
  what the replay keeps between runs; ``openings`` -- guardian lapse dates from the regulator's
  endpoint; ``report_sections`` -- lawfulness, activity and anchoring in the report;
  ``resident`` -- every access to one resident's records, proven;
* ``findings`` -- ``Finding`` (stable ``FindingCode``), ``Report``;
* ``fetch`` -- the HTTP client; ``state`` -- the state file; ``anchors`` -- chain and claimed
  anchors; ``leaves`` and ``locate`` -- rehashing leaves and locating bad ones; ``lag`` --
  anchoring lag; ``cli`` -- the ``auditor`` command; ``errors`` -- why an audit could not run.
"""
