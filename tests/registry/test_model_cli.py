"""`fabricml model`: the operator's path from a model folder to an audit report."""

from __future__ import annotations

import json
from pathlib import Path

import model_signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from fabricml.network.network import Network
from tests.conftest import fabricml
from tests.registry.conftest import unique


def _model(network: Network, *args: str, check: bool = True) -> tuple[int, str, str]:
    where = ["--topology", str(network.topology.source), "--state-dir", str(network.layout.root)]
    result = fabricml("model", *args, *where, check=check)
    return result.returncode, result.stdout, result.stderr


def _register(network: Network, model_dir: Path, tmp_path: Path, name: str, *extra: str) -> dict[str, object]:
    data = tmp_path / "claims.csv"
    data.write_text("age,amount,fraud\n40,1200,0\n31,90,1\n")
    _, out, _ = _model(
        network, "register", str(model_dir), "--name", name, "--version", "1.0", "--dataset", str(data),
        "--metrics", '{"auc": 0.88}', "--param", "epochs=3", "--json", *extra,
    )  # fmt: skip
    return dict(json.loads(out))


def test_register_approve_show_and_list_through_the_cli(
    network: Network, model_dir: Path, tmp_path: Path
) -> None:
    name = unique("cli")
    record = _register(network, model_dir, tmp_path, name)
    assert record["datasets"][0]["rows"] == 2 and record["metrics"] == {"auc": 0.88}  # type: ignore[index]
    _model(network, "approve", f"{name}@1.0", "--org", "org1")
    _model(network, "approve", f"{name}@1.0", "--org", "org3")
    _, out, _ = _model(network, "show", f"{name}@1.0", "--org", "org2", "--json")
    shown = json.loads(out)
    assert shown["status"] == "approved" and shown["deployability"]["deployable"] is True
    _, out, _ = _model(network, "list", "--name", name, "--json")
    assert [m["version"] for m in json.loads(out)["models"]] == ["1.0"]


def test_lineage_picture_audit_report_and_cyclonedx_export(
    network: Network, model_dir: Path, tmp_path: Path
) -> None:
    name = unique("report")
    _register(network, model_dir, tmp_path, name)
    _model(network, "register", str(model_dir), "--name", name, "--version", "2.0", "--parent", f"{name}@1.0")
    _, out, _ = _model(network, "approve", f"{name}@1.0", "--org", "org2", "--json")
    approval_tx = json.loads(out)["approvals"][0]["txId"]
    for org in ("org3", "org1"):  # one vote each: a majority of the three members revokes
        _model(network, "revoke", f"{name}@1.0", "--reason", "drift beyond tolerance", "--org", org)

    png = tmp_path / "lineage.png"
    _, out, _ = _model(network, "lineage", f"{name}@2.0", "--png", str(png))
    assert f"{name}@1.0" in out and "revoked" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000

    html = tmp_path / "audit.html"
    _model(network, "audit-report", f"{name}@1.0", "--out", str(html), "--org", "org2")
    text = html.read_text()
    assert approval_tx in text and "drift beyond tolerance" in text
    assert "data:image/png;base64," in text and "&quot;hyperparameters&quot;" in text

    bom = tmp_path / "bom.json"
    _model(network, "export-cyclonedx", f"{name}@1.0", "--out", str(bom))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom.read_text()) is None
    component = json.loads(bom.read_text())["components"][0]
    assert component["type"] == "machine-learning-model" and component["name"] == name


def test_verify_exits_1_and_names_the_tampered_file(
    network: Network, model_dir: Path, tmp_path: Path
) -> None:
    name = unique("verify")
    _register(network, model_dir, tmp_path, name)
    _, out, _ = _model(network, "verify", f"{name}@1.0", str(model_dir), "--org", "org3")
    assert "matches" in out
    (model_dir / "config.json").write_text('{"layers": 3}')
    code, out, _ = _model(
        network, "verify", f"{name}@1.0", str(model_dir), "--org", "org3", "--json", check=False
    )
    assert code == 1
    report = json.loads(out)
    assert report["matches"] is False and report["problems"][0].startswith("config.json: sha256")


def _keypair(tmp_path: Path, label: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = tmp_path / f"{label}.pem", tmp_path / f"{label}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_an_openssf_model_signing_bundle_is_checked_against_the_registered_files(
    network: Network, model_dir: Path, tmp_path: Path
) -> None:
    name = unique("signed")
    _register(network, model_dir, tmp_path, name)
    private, public = _keypair(tmp_path, "publisher")
    bundle = tmp_path / "model.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private).sign(model_dir, bundle)
    _, out, _ = _model(network, "import-signature", f"{name}@1.0", str(bundle), "--public-key", str(public),
                       "--org", "org2", "--json")  # fmt: skip
    check = json.loads(out)
    assert (
        check["ok"]
        and check["signature_valid"]
        and check["signed_root_digest"] == check["registered_root_digest"]
    )

    _, wrong_public = _keypair(tmp_path, "someone-else")
    code, out, _ = _model(network, "import-signature", f"{name}@1.0", str(bundle), "--public-key",
                          str(wrong_public), "--json", check=False)  # fmt: skip
    assert code == 1 and json.loads(out)["signature_valid"] is False

    other = tmp_path / "other-model"
    other.mkdir()
    (other / "weights.bin").write_bytes(b"different model")
    other_bundle = tmp_path / "other.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private).sign(other, other_bundle)
    code, out, _ = _model(network, "import-signature", f"{name}@1.0", str(other_bundle), "--public-key",
                          str(public), "--json", check=False)  # fmt: skip
    mismatch = json.loads(out)
    assert code == 1 and mismatch["signed_root_digest"] != mismatch["registered_root_digest"]
    assert mismatch["file_problems"]


def test_a_deployment_policy_vote_changes_how_many_approvals_a_model_needs(
    network: Network, model_dir: Path, tmp_path: Path
) -> None:
    name = unique("policy")
    _, out, _ = _model(network, "policy", "vote", name, "ALL", "--org", "org1", "--json")
    assert json.loads(out)["rule"] == "MAJORITY"
    _, out, _ = _model(network, "policy", "vote", name, "ALL", "--org", "org2", "--json")
    assert json.loads(out)["rule"] == "ALL"
    _register(network, model_dir, tmp_path, name)
    for org in ("org1", "org2"):
        _model(network, "approve", f"{name}@1.0", "--org", org)
    _, out, _ = _model(network, "show", f"{name}@1.0", "--json")
    assert json.loads(out)["deployability"] == {
        **json.loads(out)["deployability"],
        "deployable": False,
        "required": 3,
    }
    _, out, _ = _model(network, "approve", f"{name}@1.0", "--org", "org3", "--json")
    assert json.loads(out)["status"] == "approved"


def test_a_refused_name_is_reported_with_the_whole_pattern(network: Network, model_dir: Path) -> None:
    # Issue 17.1: the pattern's "[a-z0-9]" used to vanish into rich markup.
    code, _, err = _model(
        network, "register", str(model_dir), "--name", "Bad Name", "--version", "1.0", check=False
    )
    assert code == 1
    assert "'Bad Name'" in err and "[a-z0-9][a-z0-9._-]{0,63}" in err, err


def test_confirmation_suspension_and_confidential_grants_through_the_cli(
    network: Network, model_dir: Path, tmp_path: Path
) -> None:
    name = unique("govcli")
    secret = tmp_path / "secret.json"
    secret.write_text('{"vendor": "the data broker we pay"}')
    record = _register(
        network, model_dir, tmp_path, name, "--training-org", "Org2MSP", "--confidential", str(secret)
    )
    ref = f"{name}@1.0"
    assert record["pendingConfirmations"] == ["Org2MSP"], record
    code, _, _ = _model(network, "approve", ref, "--org", "org1", check=False)
    assert code == 1  # refused until every named training org confirmed
    _, out, _ = _model(network, "confirm-training", ref, "--org", "org2", "--json")
    assert not json.loads(out).get("pendingConfirmations"), out
    _, out, _ = _model(network, "suspend", ref, "--reason", "our audit is pending", "--org", "org2", "--json")
    assert json.loads(out)["mspId"] == "Org2MSP", out
    _, out, _ = _model(network, "resume", ref, "--org", "org2", "--json")
    assert json.loads(out)["mspId"] == "Org2MSP", out
    code, _, _ = _model(network, "grant-confidential", ref, "--to", "Org3MSP", "--org", "org2", check=False)
    assert code == 1  # only the owner org grants its confidential provenance
    _, out, _ = _model(network, "grant-confidential", ref, "--to", "Org3MSP", "--org", "org1", "--json")
    grant = json.loads(out)
    assert grant["grantee"] == "Org3MSP" and not grant.get("withdrawn"), grant
    _, out, _ = _model(network, "withdraw-grant", ref, "--to", "Org3MSP", "--org", "org1", "--json")
    assert json.loads(out)["withdrawn"]["mspId"] == "Org1MSP", out
