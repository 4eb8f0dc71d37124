"""Ledger and CA access behind the handlers, one module per resource."""
