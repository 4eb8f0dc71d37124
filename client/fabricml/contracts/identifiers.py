"""Identifier rules, the same as the chaincode's (chaincode/ledgerutil/identifiers.go).

Each `<THING>_PATTERN` here is the Go constant `<Thing>Pattern` character for character
(tests/unit/test_identifiers.py compares them). Apply them with `matches`, never with
re.match: Python's `$` also matches before a trailing newline, Go's does not."""

from __future__ import annotations

import re
from functools import cache

# Rules the chaincode enforces.
DIGEST_PATTERN = r"^[0-9a-f]{64}$"
LEDGER_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"  # tasks, claims, mint proposals, datasets, metrics
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
MODEL_VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$"
COMMIT_HASH_PATTERN = r"^[0-9a-f]{40}([0-9a-f]{24})?$"
AMOUNT_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,2})?$"
RULE_PATTERN = (
    r"^(trust\+)?((nnm|bucket:[0-9]{1,2})\+)?"
    r"(fedavg|median|trimmed:[0-9]{1,2}|krum:[0-9]{1,2}:[0-9]{1,2}|cc(:[0-9]{1,2})?|fltrust)(\+normbound)?$"
)
SAFE_TEXT_PATTERN = r"^[A-Za-z0-9@._:+\-/ ]{0,128}$"
DEPLOYMENT_RULE_PATTERN = r"^(MAJORITY|ALL|ANY|AT_LEAST_[1-9][0-9]?)$"
AT_LEAST_POLICY_PATTERN = r"^AT_LEAST_([1-9][0-9]?)$"

# Rules of the org's own tools, not of the chaincode: CA identity names and MSP IDs.
IDENTITY_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
MSP_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9.-]{0,63}$"

CHAINCODE_RULES = {
    "DigestPattern": DIGEST_PATTERN,
    "LedgerIDPattern": LEDGER_ID_PATTERN,
    "ModelNamePattern": MODEL_NAME_PATTERN,
    "ModelVersionPattern": MODEL_VERSION_PATTERN,
    "CommitHashPattern": COMMIT_HASH_PATTERN,
    "AmountPattern": AMOUNT_PATTERN,
    "RulePattern": RULE_PATTERN,
    "SafeTextPattern": SAFE_TEXT_PATTERN,
    "DeploymentRulePattern": DEPLOYMENT_RULE_PATTERN,
    "AtLeastPolicyPattern": AT_LEAST_POLICY_PATTERN,
}


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def matches(pattern: str, value: str) -> bool:
    """Whether all of `value` follows the rule, as Go's MatchString with ^...$ decides."""
    return _compiled(pattern).fullmatch(value) is not None


def optional(pattern: str) -> str:
    """The rule, or the empty string (for filters such as "every model name")."""
    return f"^({pattern.removeprefix('^').removesuffix('$')})?$"


def model_ref(name: str, version: str) -> str:
    """`name@version`, the registry's reference to a model version."""
    return f"{name}@{version}"
