"""The customer base: profiles and personal data, imports, surveys, phone verification, support."""
