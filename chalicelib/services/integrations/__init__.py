"""Webhooks: events out to the tenant's systems."""
