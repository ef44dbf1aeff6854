"""Members on their tenant's site: their sessions (sign in by SMS code, sign up with a card)."""
