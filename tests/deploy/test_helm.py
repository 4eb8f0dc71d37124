"""The per-org Helm chart: `helm lint` and `helm template` (Helm built from the Go module proxy),
the rendered objects valid by Kubernetes' schemas, no key in the chart, every Secret it mounts
created by the generated script from the site's own files, the site file's ports and host."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from fabricml.network.deploy.helmbuild import ensure_helm
from tests.sites.scan import secrets_of

from .conftest import JoinedSite, deploy

KUBERNETES = "1.33.0"


@pytest.fixture(scope="module")
def helm() -> Path:
    return ensure_helm()  # scripts/setup.sh builds it; a first run here builds it (about 10 min)


@pytest.fixture(scope="module")
def out(joined_site: JoinedSite) -> Path:
    result = deploy("helm", "--state-dir", str(joined_site.root))
    assert result.exit_code == 0, result.output
    return joined_site.root / "deploy" / "helm"


@pytest.fixture(scope="module")
def rendered(helm: Path, out: Path) -> list[dict[str, Any]]:
    text = subprocess.run(
        [str(helm), "template", "city-hospital", str(out / "chart")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def _script_secrets(out: Path) -> dict[str, dict[str, Path]]:
    """Secret name -> key -> source file, read back from create-secrets.sh's `secret NAME ...` lines."""
    secrets: dict[str, dict[str, Path]] = {}
    text = (out / "secrets" / "create-secrets.sh").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if not line.startswith("secret "):
            continue
        _, name, *args = shlex.split(line)
        pairs = [a.removeprefix("--from-file=").split("=", 1) for a in args]
        assert all(a.startswith("--from-file=") for a in args), line
        secrets[name] = {key: Path(src) for key, src in pairs}
    return secrets


def _pod_specs(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in rendered
        if "template" in d.get("spec", {})
    }


def test_helm_lint_passes_strictly(helm: Path, out: Path) -> None:
    lint = subprocess.run([str(helm), "lint", "--strict", str(out / "chart")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_every_rendered_object_is_valid_by_the_kubernetes_schema(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted({d["kind"] for d in rendered})
    assert kinds == ["ConfigMap", "Deployment", "Service", "StatefulSet"]
    for d in rendered:
        kubernetes_validate.validate(d, KUBERNETES, strict=True)
    bad = {**rendered[0], "spec": {"replicas": "one"}}
    with pytest.raises(kubernetes_validate.ValidationError):  # the schema does reject a bad object
        kubernetes_validate.validate(bad, KUBERNETES, strict=True)


def test_no_key_or_secret_of_the_site_is_in_the_chart_or_what_it_renders(
    helm: Path, out: Path, joined_site: JoinedSite, rendered: list[dict[str, Any]]
) -> None:
    secrets = secrets_of(joined_site.root)
    assert len(secrets) >= 20
    texts = {p: p.read_bytes() for p in (out / "chart").rglob("*") if p.is_file()}
    texts[out / "secrets" / "create-secrets.sh"] = (out / "secrets" / "create-secrets.sh").read_bytes()
    texts[Path("rendered")] = yaml.safe_dump_all(rendered).encode()
    for path, data in texts.items():
        assert b"PRIVATE KEY" not in data, path
        leaked = [s[:12] for s in secrets if s in data]
        assert not leaked, f"{path} holds the site's secret(s) {leaked}"
    assert not [d for d in rendered if d["kind"] == "Secret"]


def test_every_secret_the_pods_mount_is_created_from_the_site_by_the_script(
    out: Path, joined_site: JoinedSite, rendered: list[dict[str, Any]]
) -> None:
    created = _script_secrets(out)
    referenced = set()
    for name, spec in _pod_specs(rendered).items():
        for volume in spec["volumes"]:
            if "secret" not in volume:
                continue
            secret = volume["secret"]
            referenced.add(secret["secretName"])
            keys = created.get(secret["secretName"])
            assert keys is not None, f"{name} mounts {secret['secretName']}, which the script never creates"
            missing = {i["key"] for i in secret.get("items", [])} - set(keys)
            assert not missing, f"{name}: {secret['secretName']} lacks {missing}"
    assert referenced == set(created)
    for keys in created.values():
        for src in keys.values():
            assert src.is_file() and src.is_relative_to(joined_site.root), src
    assert any(b"PRIVATE KEY" in s.read_bytes() for keys in created.values() for s in keys.values())


def test_the_secret_script_and_folder_are_private_and_shellcheck_clean(out: Path) -> None:
    script = out / "secrets" / "create-secrets.sh"
    assert (out / "secrets").stat().st_mode & 0o777 == 0o700
    assert script.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (out / "chart").rglob("*") if p.is_file())
    check = subprocess.run(
        [str(Path(sys.executable).parent / "shellcheck"), str(script)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout


def test_services_expose_the_site_files_ports(
    rendered: list[dict[str, Any]], joined_site: JoinedSite
) -> None:
    org = joined_site.org
    services = [d for d in rendered if d["kind"] == "Service"]
    exposed = {p["port"] for s in services for p in s["spec"]["ports"]}
    assert exposed == set(org.named_ports().values())
    for s in services:
        assert all(p["targetPort"] == p["name"] for p in s["spec"]["ports"])
    container_ports = {
        p["containerPort"]
        for spec in _pod_specs(rendered).values()
        for c in spec["containers"]
        for p in c["ports"]
    }
    assert container_ports == set(org.named_ports().values())


def test_pods_bind_every_interface_and_advertise_the_site_files_host(
    rendered: list[dict[str, Any]], joined_site: JoinedSite
) -> None:
    org = joined_site.org
    env = {
        e["name"]: e["value"]
        for spec in _pod_specs(rendered).values()
        for c in spec["containers"]
        for e in c["env"]
    }
    assert env["CORE_PEER_LISTENADDRESS"] == f"0.0.0.0:{org.peer_port}"
    assert env["CORE_PEER_ADDRESS"] == env["CORE_PEER_GOSSIP_EXTERNALENDPOINT"] == org.peer_address
    assert env["ORDERER_GENERAL_LISTENADDRESS"] == "0.0.0.0"
    assert env["CHAINCODE_SERVER_ADDRESS"] == f"0.0.0.0:{org.chaincode_port}"
    assert env["FABRICML_API_HOST"] == "0.0.0.0"
    store = next(
        c["command"]
        for spec in _pod_specs(rendered).values()
        for c in spec["containers"]
        if "fabricml.registry.artifact_server" in c["command"]
    )
    assert store[store.index("--host") + 1] == "0.0.0.0"


def test_pods_see_the_site_at_its_own_paths_and_write_only_their_claims(
    rendered: list[dict[str, Any]], joined_site: JoinedSite
) -> None:
    root = joined_site.root
    for name, spec in _pod_specs(rendered).items():
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in spec.get("initContainers", []) + spec["containers"]:
            for m in c["volumeMounts"]:
                path = Path(m["mountPath"])
                assert path.is_relative_to(root) or str(path).startswith(
                    ("/etc/fabricml/", "/var/fabricml-seed")
                ), (name, path)
                if m["name"] != "data":
                    assert m.get("readOnly") is True and m["name"] in volumes, (name, m)


def test_a_private_key_among_public_site_files_is_refused(joined_site: JoinedSite, tmp_path: Path) -> None:
    planted = joined_site.root / "members" / "org9" / "stray.pem"
    planted.write_bytes(joined_site.member.admin.key_pem())
    try:
        result = deploy(
            "helm", "--state-dir", str(joined_site.root), "--out", str(joined_site.root / "deploy" / "x")
        )
    finally:
        planted.unlink()
    assert result.exit_code == 1, result.output
    assert f"{planted} holds a private key" in result.output
    assert not (joined_site.root / "deploy" / "x" / "chart" / "templates").exists()
