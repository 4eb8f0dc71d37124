"""Model architectures fabricml trains and serves, saved as safetensors plus config.json."""
