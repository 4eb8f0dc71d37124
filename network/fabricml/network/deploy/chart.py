"""One organization's Helm chart: StatefulSets (CA, orderers, peer, artifact store + admin API), a
Deployment (chaincode server), Services, claims and ConfigMaps. Keys are never in the chart: pods
reference Secrets that `secrets/create-secrets.sh` creates from the site's own files."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import yaml

from ..binaries import FABRIC_VERSION
from .filesets import FileSet, object_name
from .images import FABRIC_IMAGES, package_version
from .kube import PODS, PROBE_SCHEMES, PROBES, SOCKET_PROBES, ObjectSet, Pod, PodVolumes, pods
from .plan import SitePlan
from .secretscript import write_script
from .writer import private_dir, write_private

IMAGE_VALUE = {"ca": "ca", "orderer": "orderer", "peer": "peer"}  # others run the fabricml image
STORAGE = {"ca": "1Gi", "orderer": "10Gi", "peer": "20Gi", "services": "10Gi"}
_WITH = re.compile(r"^(\s*)__with__ (\w+): (\S+)$", re.MULTILINE)


def helm_yaml(doc: dict[str, Any]) -> str:
    """YAML with `__with__ key: .Values.x` lines turned into Helm's optional blocks."""

    def block(m: re.Match[str]) -> str:
        pad, key, value = m.group(1), m.group(2), m.group(3)
        body = f"{{{{- toYaml . | nindent {len(pad) + 2} }}}}"
        return f"{pad}{{{{- with {value} }}}}\n{pad}{key}:\n{pad}  {body}\n{pad}{{{{- end }}}}"

    return _WITH.sub(block, yaml.safe_dump(doc, sort_keys=False, width=1000))


class Chart:
    def __init__(self, plan: SitePlan) -> None:
        self.plan = plan
        self.objects = ObjectSet()
        self.part_of = f"fabricml-{plan.org.name}"

    def labels(self, pod: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": pod, "app.kubernetes.io/part-of": self.part_of}

    def container(self, c: Any, volumes: PodVolumes) -> dict[str, Any]:
        image = IMAGE_VALUE.get(c.kind, "fabricml")
        spec: dict[str, Any] = {
            "name": c.kind,
            "image": f"{{{{ .Values.images.{image} }}}}",
            "imagePullPolicy": "{{ .Values.imagePullPolicy }}",
            "command": c.command,
            "env": [{"name": k, "value": v} for k, v in sorted(c.env.items())],
            "ports": [{"name": n, "containerPort": p} for n, p in c.ports.items()],
            "volumeMounts": volumes.mounts(c),
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }
        if c.kind in PROBES:
            get = {"path": "/healthz", "port": PROBES[c.kind], "scheme": PROBE_SCHEMES[c.kind]}
            probe = {"httpGet": get, "periodSeconds": 10}
            spec["readinessProbe"] = spec["livenessProbe"] = probe
        elif c.kind in SOCKET_PROBES:
            spec["readinessProbe"] = {"tcpSocket": {"port": SOCKET_PROBES[c.kind]}, "periodSeconds": 10}
        return spec

    def workload(self, pod: Pod) -> dict[str, Any]:
        volumes = PodVolumes(self.plan, self.objects)
        containers = [self.container(c, volumes) for c in pod.components]
        spec: dict[str, Any] = {
            "__with__ securityContext": ".Values.podSecurityContext",
            "__with__ hostAliases": ".Values.hostAliases",
            "__with__ nodeSelector": ".Values.nodeSelector",
            "automountServiceAccountToken": False,
        }
        if pod.components[0].kind == "ca":
            spec["initContainers"] = [volumes.ca_seed(pod.components[0])]
        spec["containers"] = containers
        spec["volumes"] = list(volumes.volumes.values())
        selector = {"matchLabels": self.labels(pod.name)}
        template = {"metadata": {"labels": self.labels(pod.name)}, "spec": spec}
        body: dict[str, Any] = {"replicas": 1, "selector": selector}
        if pod.stateful:
            body.update(serviceName=pod.name, template=template, volumeClaimTemplates=[self.claim(pod)])
            kind = "StatefulSet"
        else:
            body.update(strategy={"type": "Recreate"}, template=template)
            kind = "Deployment"
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": self.meta(pod.name), "spec": body}

    def meta(self, name: str) -> dict[str, Any]:
        return {"name": name, "labels": self.labels(name)}

    def claim(self, pod: Pod) -> dict[str, Any]:
        size = f"{{{{ .Values.storage.size.{_pod_kind(pod)} }}}}"
        spec = {
            "accessModes": ["ReadWriteOnce"],
            "__with__ storageClassName": ".Values.storage.className",
            "resources": {"requests": {"storage": size}},
        }
        return {"metadata": {"name": "data"}, "spec": spec}

    def service(self, pod: Pod) -> dict[str, Any]:
        ports = [{"name": n, "port": p, "targetPort": n} for c in pod.components for n, p in c.ports.items()]
        meta = {**self.meta(pod.name), "__with__ annotations": ".Values.service.annotations"}
        spec = {"type": "{{ .Values.service.type }}", "selector": self.labels(pod.name), "ports": ports}
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}

    def node_config(self, pod: Pod) -> dict[str, Any] | None:
        c = pod.components[0]
        if not c.config:
            return None
        name = object_name(c.name, "config")
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": self.meta(name), "data": c.config}

    def public(self, fs: FileSet) -> dict[str, Any]:
        """Public site files (certificates, the site's view); binary ones (blocks) as binaryData."""
        data: dict[str, str] = {}
        binary: dict[str, str] = {}
        for key, src in sorted(fs.sources.items()):
            raw = src.read_bytes()
            try:
                data[key] = raw.decode()
            except UnicodeDecodeError:
                binary[key] = base64.b64encode(raw).decode()
        doc: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.meta(fs.name),
            "data": data,
        }
        if binary:
            doc["binaryData"] = binary
        return doc

    def templates(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for pod in pods(self.plan):
            out[f"{pod.name}.yaml"] = helm_yaml(self.workload(pod)) + "---\n" + helm_yaml(self.service(pod))
            config = self.node_config(pod)
            if config is not None:
                out[f"{pod.name}-config.yaml"] = literal(config)
        for fs in self.objects.configs.values():
            out[f"public-{fs.name}.yaml"] = literal(self.public(fs))
        return out

    def values(self) -> dict[str, Any]:
        return {
            "images": {**FABRIC_IMAGES, "fabricml": self.plan.image},
            "imagePullPolicy": "IfNotPresent",
            "service": {"type": "ClusterIP", "annotations": {}},
            "storage": {"className": "", "size": STORAGE},
            "podSecurityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
            },
            "hostAliases": [],
            "nodeSelector": {},
        }

    def chart_yaml(self) -> dict[str, Any]:
        org = self.plan.org
        return {
            "apiVersion": "v2",
            "name": self.part_of,
            "description": f"The Fabric nodes and fabricml services of {org.name} ({org.msp_id}), one site",
            "type": "application",
            "version": package_version(),
            "appVersion": FABRIC_VERSION,
        }


def literal(doc: dict[str, Any]) -> str:
    """YAML that Helm passes through unchanged: `{{` in file contents is escaped."""
    return yaml.safe_dump(doc, sort_keys=False, width=1000).replace("{{", '{{ "{{" }}')


def _pod_kind(pod: Pod) -> str:
    kind = pod.components[0].kind
    return next(k for k, kinds in PODS.items() if kind in kinds)


HEADER = "# GENERATED by `fabricml site deploy helm --state-dir {root}`; do not edit.\n"


def write(plan: SitePlan, out: Path) -> tuple[Path, Path]:
    """Write the chart to out/chart and the Secret-creating script to out/secrets; returns both."""
    chart = Chart(plan)
    templates = chart.templates()  # fills chart.objects
    root = private_dir(out / "chart")
    header = HEADER.format(root=plan.root)
    write_private(root / "Chart.yaml", header + yaml.safe_dump(chart.chart_yaml(), sort_keys=False))
    write_private(root / "values.yaml", header + helm_yaml(chart.values()))
    for name, text in templates.items():
        write_private(root / "templates" / name, header + text)
    script = write_script(plan, chart.objects.secrets, out / "secrets")
    return root, script
