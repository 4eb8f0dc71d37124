"""The org admin REST API and dashboard: one process per organization."""
