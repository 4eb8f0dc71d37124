"""Flower apps on fabricml: the Flower server becomes accountable instead of trusted.

`mod.fabricml_mod` (a ClientApp mod) commits each update on the Federation contract before
it leaves the client and refuses a global model the orgs' quorum did not agree on;
`strategy.AccountableStrategy` (a Strategy wrapper) counts only committed updates and
aggregates them exactly; `verifier.Verifier` (one per org) recomputes every round from the
committed bytes and posts its own assessment. Only `mod`, `strategy` and `messages` import
flwr (the optional extra `fabricml[flower]`). See docs/flower.md."""
