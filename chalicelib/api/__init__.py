"""HTTP layer: thin route handlers, the route table with role declarations, auth, OpenAPI."""
