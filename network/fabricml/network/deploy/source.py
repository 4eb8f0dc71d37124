"""Read what a deployment is generated from: the site file, and the site directory `site init` made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .. import sitefile
from ..chaincode import Deployment, check_version, package_id_for
from ..layout import SiteLayout
from ..topology import Organization
from .plan import IMAGE_BUILDER, SitePlan

KUBERNETES_LISTEN = "0.0.0.0"  # pods bind every interface; Services and the site's host reach them


class DeployError(ValueError):
    """A deployment cannot be generated; the message says what is wrong and what to do."""


def site_org(state_dir: Path, site_file: Path | None) -> Organization:
    """The site's organization; a given site file must be the one the site was initialized with."""
    layout = SiteLayout(state_dir)
    if not layout.bundle.exists():
        raise DeployError(
            f"{state_dir} is no initialized site; run `fabricml site init --site-file FILE --state-dir DIR`"
        )
    org = sitefile.load(layout.site_file)
    if site_file is not None:
        given = sitefile.load(site_file)
        if sitefile.render(given) != sitefile.render(org):
            raise DeployError(
                f"{site_file} differs from the site file {state_dir} was initialized with "
                f"({layout.site_file}); its certificates name that one's addresses"
            )
    return org


def container_core_yaml(site: SiteLayout, org: Organization) -> str:
    """The site's core.yaml with Fabric's CCaaS builder of the official peer image. The builder
    keeps our name, because a peer refuses chaincode built by a builder no longer configured."""
    core: dict[str, Any] = yaml.safe_load((site.node_home(org.peer_name) / "core.yaml").read_text())
    builders = core["chaincode"]["externalBuilders"]
    name = builders[0]["name"] if builders else "fabricml-ccaas"
    core["chaincode"]["externalBuilders"] = [
        {
            "name": name,
            "path": IMAGE_BUILDER,
            "propagateEnvironment": ["CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"],
        }
    ]
    core["vm"]["endpoint"] = ""
    return yaml.safe_dump(core, sort_keys=False)


def node_config(site: SiteLayout, org: Organization) -> dict[str, str]:
    config = {org.peer_name: container_core_yaml(site, org)}
    for o in org.orderers:
        config[o.name] = (site.node_home(o.name) / "orderer.yaml").read_text()
    return config


def chaincode(site: SiteLayout, version: str | None) -> tuple[str, str]:
    """(version, package ID): what the site deployed, else what `version` (default 1.0) gives."""
    deployed = Deployment.load(site.deployment)
    if deployed is not None and version in (None, deployed.version):
        return deployed.version, deployed.package_id
    chosen = check_version(version or _joined_version(site) or "1.0")
    name = str(_joined(site).get("chaincode", "fabricml"))
    return chosen, package_id_for(f"{name}_{chosen}")


def _joined(site: SiteLayout) -> dict[str, Any]:
    return dict(json.loads(site.channel_file.read_text())) if site.channel_file.exists() else {}


def _joined_version(site: SiteLayout) -> str | None:
    value = _joined(site).get("version")
    return str(value) if value else None


def load_plan(state_dir: Path, site_file: Path | None, listen: str | None, version: str | None) -> SitePlan:
    """The plan of the site in state_dir; `listen` None means the site's own host."""
    root = state_dir.resolve()
    org = site_org(root, site_file)
    site = SiteLayout(root)
    cc_version, package_id = chaincode(site, version)
    return SitePlan(org, root, listen or org.host, package_id, cc_version, node_config(site, org))
