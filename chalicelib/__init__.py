"""Loyalty-program platform: runtime package deployed with every Lambda function."""
