"""consent_api."""
