"""Bring a Hyperledger Fabric consortium up natively, from one topology file."""
