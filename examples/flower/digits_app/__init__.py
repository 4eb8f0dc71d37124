"""The digits task as a Flower app whose server is accountable to the consortium."""
