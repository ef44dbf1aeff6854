"""Reports, the live dashboard, the promotion simulator, reconciliation."""
