"""Kubernetes pods for a site's components: each site path a volume (Secret, ConfigMap or the pod's
claim) mounted at the same path it has on the host, so the site's own paths hold in the pod."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .filesets import CA_SEED_EXCLUDE, FileSet, fileset, object_name, refuse_private_keys
from .plan import Component, SitePlan

SEED = Path("/var/fabricml-seed")  # where a CA pod sees its home's first contents
# Optional components run with compose (or by hand); the chart runs the site's servers.
PODS = {"ca": ("ca",), "orderer": ("orderer",), "peer": ("peer",), "chaincode": ("chaincode",),
        "services": ("revocations", "artifacts", "api")}  # fmt: skip
PROBES = {"ca": "ca-ops", "orderer": "ops", "peer": "ops"}  # operations ports serving /healthz
# Peers' and orderers' operations speak TLS (/healthz needs no client certificate); the CA's is plain.
PROBE_SCHEMES = {"ca": "HTTP", "orderer": "HTTPS", "peer": "HTTPS"}
SOCKET_PROBES = {"chaincode": "chaincode", "artifacts": "artifacts", "api": "api"}


@dataclass
class ObjectSet:
    """Every Secret and ConfigMap the chart's pods mount, by object name."""

    secrets: dict[str, FileSet] = field(default_factory=dict)
    configs: dict[str, FileSet] = field(default_factory=dict)


@dataclass(frozen=True)
class Pod:
    name: str  # DNS-1123 name of the workload and its Service
    components: tuple[Component, ...]
    stateful: bool


def pods(plan: SitePlan) -> list[Pod]:
    org = plan.org.name
    by_kind: dict[str, list[Component]] = {}
    for c in plan.components():
        if not c.optional:
            by_kind.setdefault(c.kind, []).append(c)
    out = [Pod(object_name(c.name, ""), (c,), True) for c in by_kind["ca"] + by_kind.get("orderer", [])]
    out.append(Pod(object_name(plan.org.peer_name, ""), tuple(by_kind["peer"]), True))
    out.append(Pod(object_name(plan.org.chaincode_name, ""), tuple(by_kind["chaincode"]), False))
    services = by_kind["revocations"] + by_kind["artifacts"] + by_kind["api"]
    out.append(Pod(f"services-{org}", tuple(services), True))
    return out


class PodVolumes:
    """Volumes of one pod and each container's mounts."""

    def __init__(self, plan: SitePlan, objects: ObjectSet) -> None:
        self.plan, self.objects = plan, objects
        self.volumes: dict[str, dict[str, Any]] = {}

    def _object(self, path: str, secret: bool, seed: bool = False) -> tuple[str, FileSet]:
        """The Secret (keys) or ConfigMap (public files, checked to hold no key) for a site path."""
        org, root = self.plan.org.name, self.plan.root
        fs = fileset(org, root, path, CA_SEED_EXCLUDE, "-seed") if seed else fileset(org, root, path)
        if not secret:
            refuse_private_keys(fs)
        (self.objects.secrets if secret else self.objects.configs)[fs.name] = fs
        return fs.name, fs

    def _volume(self, name: str, source: dict[str, Any]) -> str:
        self.volumes.setdefault(name, {"name": name, **source})
        return name

    def site_file(
        self, path: str, secret: bool, at: str | None = None, items: list[dict[str, str]] | None = None
    ) -> list[dict[str, Any]]:
        obj, fs = self._object(path, secret)
        ref = {"secretName": obj, "defaultMode": 0o440} if secret else {"name": obj}
        kind = "secret" if secret else "configMap"
        target = self.plan.root / (at or path)
        if fs.is_file:
            vol = self._volume(obj, {kind: ref})
            return [
                {"name": vol, "mountPath": str(target), "subPath": next(iter(fs.files)), "readOnly": True}
            ]
        chosen = items if items is not None else fs.items()
        vol_name = obj if items is None else object_name(obj, at or path, "-view")
        vol = self._volume(vol_name, {kind: {**ref, "items": chosen}})
        return [{"name": vol, "mountPath": str(target), "readOnly": True}]

    def members_as_sites(self) -> list[dict[str, Any]]:
        """sites/<member> is a link to members/<member> on the host: mount those files there too."""
        _, fs = self._object("members", secret=False)
        mounts = []
        for name in sorted({rel.split("/", 1)[0] for rel in fs.files.values()}):
            items = [{"key": k, "path": rel.split("/", 1)[1]} for k, rel in sorted(fs.files.items())
                     if rel.startswith(f"{name}/")]  # fmt: skip
            if name != self.plan.org.name:
                mounts += self.site_file("members", False, f"sites/{name}", items)
        return mounts

    def mounts(self, c: Component) -> list[dict[str, Any]]:
        """A container's mounts; the host's sites/<own org> link (to the site root) is mounted too."""
        own = f"sites/{self.plan.org.name}"
        out: list[dict[str, Any]] = []
        for p in c.files.data:
            out.append({"name": "data", "mountPath": str(self.plan.root / p), "subPath": object_name(p, "")})
        for secret, paths in ((True, c.files.secret), (False, c.files.public)):
            for p in paths:
                if p == "sites":
                    out += self.members_as_sites()
                    continue
                if not (self.plan.root / p).exists():
                    continue
                out += self.site_file(p, secret)
                if "sites" in c.files.public:
                    out += self.site_file(p, secret, f"{own}/{p}")
        if c.config:
            vol = self._volume(
                object_name(c.name, "config"), {"configMap": {"name": object_name(c.name, "config")}}
            )
            out.append({"name": vol, "mountPath": str(c.config_dir), "readOnly": True})
        return out

    def ca_seed(self, c: Component) -> dict[str, Any]:
        """An init container copying the CA's home (keys, config, database) from its Secret, once."""
        obj, fs = self._object(c.files.data[0], secret=True, seed=True)
        vol = self._volume(obj, {"secret": {"secretName": obj, "defaultMode": 0o440, "items": fs.items()}})
        home = self.plan.root / c.files.data[0]
        copy = f'for f in {SEED}/*; do cp -RL "$f" "{home}/"; done; chmod -R u+w "{home}"'
        script = f'[ -f "{home}/fabric-ca-server-config.yaml" ] || {{ {copy}; }}'
        return {
            "name": "seed-ca-home",
            "image": "{{ .Values.images.ca }}",
            "command": ["sh", "-c", script],
            "volumeMounts": [
                {"name": "data", "mountPath": str(home), "subPath": object_name(c.files.data[0], "")},
                {"name": vol, "mountPath": str(SEED), "readOnly": True},
            ],
        }
