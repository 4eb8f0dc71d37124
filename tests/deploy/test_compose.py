"""The per-org compose file: valid by the Compose Specification's schema, official images pinned,
every mount inside the site (keys read-only, each service only its own), the site file's ports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from fabricml.network.binaries import FABRIC_CA_VERSION, FABRIC_VERSION
from fabricml.network.deploy.images import fabricml_image
from fabricml.network.deploy.plan import IMAGE_BUILDER

from .conftest import JoinedSite, deploy

SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
OWN_KEYS = {  # the identities whose keys each kind of service may see
    "ca": set(), "orderer0": {"orderer0"}, "orderer1": {"orderer1"}, "peer0": {"peer0"},
    "chaincode": {"chaincode"}, "revocations": {"auditor"}, "artifacts": {"artifacts"},
    "api": {"admin", "auditor", "trainer", "user1", "api"}, "agent": {"trainer"}, "inference": {"inference"},
}  # fmt: skip


@pytest.fixture(scope="module")
def compose(joined_site: JoinedSite) -> dict[str, Any]:
    result = deploy("compose", "--state-dir", str(joined_site.root))
    assert result.exit_code == 0, result.output
    path = joined_site.root / "deploy" / "compose" / "docker-compose.yaml"
    assert path.stat().st_mode & 0o777 == 0o600
    return dict(yaml.safe_load(path.read_text()))


def test_the_compose_file_is_valid_by_the_compose_specification_schema(compose: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(compose)
    broken = {**compose, "services": {"x": {"image": "a", "network_mode": 7}}}
    with pytest.raises(jsonschema.ValidationError):  # the schema does reject a bad file
        jsonschema.Draft7Validator(SCHEMA).validate(broken)


def test_it_runs_this_org_alone_with_official_images_pinned(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert all(name.endswith(".city-hospital") for name in services)
    assert {s["image"] for s in services.values()} == {
        f"hyperledger/fabric-ca:{FABRIC_CA_VERSION}",
        f"hyperledger/fabric-orderer:{FABRIC_VERSION}",
        f"hyperledger/fabric-peer:{FABRIC_VERSION}",
        fabricml_image("1.0"),
    }
    assert FABRIC_VERSION == "3.1.1" and FABRIC_CA_VERSION.startswith("1.5.")
    assert {s["profiles"][0] for s in services.values() if "profiles" in s} == {"train", "serve"}


def _mounts(service: dict[str, Any]) -> list[tuple[Path, Path, bool]]:
    out = []
    for v in service["volumes"]:
        parts = v.split(":")
        out.append((Path(parts[0]), Path(parts[1]), parts[2:] == ["ro"]))
    return out


def test_every_mount_stays_inside_the_site_and_only_data_is_writable(
    compose: dict[str, Any], joined_site: JoinedSite
) -> None:
    root = joined_site.root
    for name, service in compose["services"].items():
        for source, target, read_only in _mounts(service):
            assert source.is_relative_to(root), f"{name} mounts {source}, outside the site"
            assert source.exists(), f"{name} mounts {source}, which is not there"
            rel = source.relative_to(root)
            if rel.parts[0] == "deploy":
                assert read_only and str(target).startswith("/etc/fabricml/"), (name, rel)
                continue
            assert target == source, f"{name}: {source} is mounted at another path, {target}"
            if rel.parts[0] == "identities" or rel == Path("ca/registrar"):
                assert read_only, f"{name} may write {rel}"
            if not read_only:
                writable = ("ca", "nodes", "artifacts", "revocations", "federated", "inference")
                assert rel.parts[0] in writable, (name, rel)


def _keys_seen(service: dict[str, Any], root: Path) -> set[str]:
    seen = set()
    for source, _, _ in _mounts(service):
        rel = source.relative_to(root)
        if rel.parts[0] == "identities":
            seen.add(rel.parts[1])
    return seen


def test_each_service_sees_only_its_own_identities_keys(
    compose: dict[str, Any], joined_site: JoinedSite
) -> None:
    for name, service in compose["services"].items():
        kind = name.split(".")[0]
        assert _keys_seen(service, joined_site.root) == OWN_KEYS[kind], name
    peer = compose["services"]["peer0.city-hospital"]
    assert "ca" not in {s.relative_to(joined_site.root).parts[0] for s, _, _ in _mounts(peer)}


def test_no_other_sites_secret_is_mounted(compose: dict[str, Any], joined_site: JoinedSite) -> None:
    foreign = joined_site.member.admin.key_pem().split(b"-----")[2].strip()
    for service in compose["services"].values():
        for source, _, _ in _mounts(service):
            files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
            assert not any(foreign in p.read_bytes() for p in files)


def _listen(service: dict[str, Any]) -> set[str]:
    env = service["environment"]
    out = {v for k, v in env.items() if k.endswith("LISTENADDRESS") or k == "CHAINCODE_SERVER_ADDRESS"}
    if "ORDERER_GENERAL_LISTENADDRESS" in env:
        out.discard(env["ORDERER_GENERAL_LISTENADDRESS"])
        out.add(f"{env['ORDERER_GENERAL_LISTENADDRESS']}:{env['ORDERER_GENERAL_LISTENPORT']}")
    argv = service["command"]
    if argv[0] == "fabric-ca-server":
        out.add(f"{argv[argv.index('--address') + 1]}:{argv[argv.index('--port') + 1]}")
    if "fabricml.registry.artifact_server" in argv:
        out.add(f"{argv[argv.index('--host') + 1]}:{argv[argv.index('--port') + 1]}")
    return out


def test_servers_listen_at_the_site_files_host_and_ports(
    compose: dict[str, Any], joined_site: JoinedSite
) -> None:
    org = joined_site.org
    listening = set().union(*(_listen(s) for s in compose["services"].values()))
    hosts = {a.rsplit(":", 1)[0] for a in listening}
    assert hosts == {org.host}
    ports = {int(a.rsplit(":", 1)[1]) for a in listening}
    # The admin API takes its port from the site's view (base + 60) and its address from the env.
    assert ports | {org.api_port} == set(org.named_ports().values())
    assert compose["services"][org.api_name]["environment"]["FABRICML_API_HOST"] == org.host
    assert all(s["network_mode"] == "host" for s in compose["services"].values())


def test_the_peer_runs_the_images_ccaas_builder_under_our_builder_name(joined_site: JoinedSite) -> None:
    core = yaml.safe_load(
        (joined_site.root / "deploy/compose/config/peer0.city-hospital/core.yaml").read_text()
    )
    assert core["chaincode"]["externalBuilders"] == [
        {"name": "fabricml-ccaas", "path": IMAGE_BUILDER,
         "propagateEnvironment": ["CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"]}
    ]  # fmt: skip


def test_only_fabricml_placeholders_are_left_for_compose_to_fill(compose: dict[str, Any]) -> None:
    text = yaml.safe_dump(compose)
    assert set(re.findall(r"(?<!\$)\$\{(\w+)", text)) == {
        "FABRICML_SOURCE", "FABRICML_TASK", "FABRICML_TRAINING_DATA", "FABRICML_MODEL"
    }  # fmt: skip


def test_the_generated_dockerfile_keeps_sites_out_of_the_build_context(joined_site: JoinedSite) -> None:
    out = joined_site.root / "deploy" / "compose"
    assert "FROM hyperledger" not in (out / "fabricml.Dockerfile").read_text()
    assert ".fabricml" in (out / "fabricml.Dockerfile.dockerignore").read_text().splitlines()


def test_output_outside_the_site_is_refused(joined_site: JoinedSite, tmp_path: Path) -> None:
    result = deploy("compose", "--state-dir", str(joined_site.root), "--out", str(tmp_path / "x"))
    assert result.exit_code == 1 and "outside the site" in result.output
    assert not (tmp_path / "x").exists()


def test_a_site_file_other_than_the_sites_own_is_refused(joined_site: JoinedSite, tmp_path: Path) -> None:
    other = tmp_path / "site.yaml"
    other.write_text((joined_site.root / "site.yaml").read_text().replace("127.0.77.1", "10.9.9.9"))
    result = deploy("compose", "--state-dir", str(joined_site.root), "--site-file", str(other))
    assert result.exit_code == 1 and "differs from the site file" in result.output


def test_a_directory_that_is_no_site_is_refused(tmp_path: Path) -> None:
    result = deploy("compose", "--state-dir", str(tmp_path))
    assert result.exit_code == 1 and "no initialized site" in result.output
