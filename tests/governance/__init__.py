"""Governance on the ledger: proposals, signatures and config updates on a real network."""
