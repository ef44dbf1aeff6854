"""Wallet passes: Apple Wallet `.pkpass` files and their web service, Save to Google Wallet links, and updates."""
