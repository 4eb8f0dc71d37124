"""Federated learning coordinated by chaincode: deterministic aggregation first."""
