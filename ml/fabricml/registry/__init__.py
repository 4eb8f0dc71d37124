"""The model registry's off-chain half: provenance manifests, artifacts, verification."""
