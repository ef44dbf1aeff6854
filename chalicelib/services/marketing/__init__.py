"""Mailings: segments, templates, mail settings, delivery and channels, campaigns, triggers."""
