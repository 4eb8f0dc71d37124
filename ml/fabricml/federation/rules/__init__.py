"""Robust aggregation rules over flat fixed-point vectors, one rule per module, each exact
in integer arithmetic; fabricml.federation.rulebook parses a task's rule string into them."""
