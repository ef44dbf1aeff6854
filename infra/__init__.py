"""Infrastructure as code: the deployed resources (template.py -> resources.json) and the local stack (local/)."""
