"""The Python identifier rules are the chaincode's, character for character."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fabricml.contracts import identifiers

CHAINCODE = Path(__file__).parents[2] / "chaincode"
IDENTIFIERS_GO = CHAINCODE / "ledgerutil" / "identifiers.go"


def go_constants(source: str) -> dict[str, str]:
    """`Name = \\`regex\\`` lines of the file's const ( ... ) blocks."""
    out: dict[str, str] = {}
    for block in re.findall(r"^const \((.*?)^\)", source, re.S | re.M):
        out.update(re.findall(r"^\s*(\w+Pattern)\s*=\s*`([^`]*)`", block, re.M))
    return out


def go_regexes_in_contracts() -> set[str]:
    """Before identifiers.go: every pattern the contracts compile."""
    found: set[str] = set()
    for path in CHAINCODE.rglob("*.go"):
        if not path.name.endswith("_test.go"):
            found |= set(re.findall(r"regexp\.MustCompile\(`([^`]*)`\)", path.read_text()))
    return found


def test_every_chaincode_rule_has_the_same_python_rule() -> None:
    if IDENTIFIERS_GO.exists():
        go = go_constants(IDENTIFIERS_GO.read_text())
        assert go, f"no `Name = \\`regex\\`` constants found in {IDENTIFIERS_GO}"
        assert go == identifiers.CHAINCODE_RULES
    else:  # the rules still live in each contract: each Python rule must be one of them
        compiled = go_regexes_in_contracts()
        assert compiled
        # DeploymentRulePattern is written out as a switch in today's policy.go, not as a regexp.
        missing = {
            name: rule
            for name, rule in identifiers.CHAINCODE_RULES.items()
            if rule not in compiled and name != "DeploymentRulePattern"
        }
        assert not missing, f"Python rules the chaincode does not have: {missing}"


def test_the_parser_reads_a_const_block() -> None:
    source = "package x\n\nconst (\n\t// A digest.\n\tDigestPattern = `^[0-9a-f]{64}$`\n\tOther = 3\n)\n"
    assert go_constants(source) == {"DigestPattern": "^[0-9a-f]{64}$"}


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (identifiers.MODEL_NAME_PATTERN, "credit-risk.v2", ["Bad Name", "-x", "a" * 65, "ok\n"]),
        (identifiers.LEDGER_ID_PATTERN, "demo-1a2b3c", ["", "a/b", "x" * 65, "t1\n"]),
        (identifiers.DIGEST_PATTERN, "0" * 64, ["0" * 63, "A" * 64, "0" * 64 + "\n"]),
        (identifiers.RULE_PATTERN, "krum:1:2+normbound", ["mean", "median+", "trimmed:123"]),
    ],
)
def test_a_rule_matches_all_of_the_value_as_go_does(pattern: str, good: str, bad: list[str]) -> None:
    assert identifiers.matches(pattern, good)
    for value in bad:
        assert not identifiers.matches(pattern, value), value


def test_an_optional_rule_also_takes_the_empty_string() -> None:
    rule = identifiers.optional(identifiers.MODEL_NAME_PATTERN)
    assert identifiers.matches(rule, "") and identifiers.matches(rule, "m1")
    assert not identifiers.matches(rule, "M 1")
