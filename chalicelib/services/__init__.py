"""Use cases: orchestrate domain rules and storage. No HTTP here, no PynamoDB either."""
