"""Thin adapters from SQS/schedule events to services."""
