"""Request and response models (pydantic): the API contract and the YAML format."""
