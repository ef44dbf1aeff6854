"""Agencies, tenants, keys and their scopes, tenant files, purge, the stage's link secret."""
