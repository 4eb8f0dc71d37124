"""Channel governance: build, review, sign, assemble and submit channel config updates."""
