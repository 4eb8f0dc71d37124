"""Inference attestation: signed receipts, Merkle batches anchored on the ledger, verification."""
