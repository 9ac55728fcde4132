"""The pure consent domain: vocabulary, consents, access decisions and their FHIR R4 renderings.

No HTTP, no database, no clock: every function takes the instants it needs and returns values.
Import from the submodules (``consent``, ``decide``, ``narrowing``, ``fhir``...); this package
re-exports nothing so that importing the core never pulls in the FHIR models.
"""
