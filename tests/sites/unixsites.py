"""Sites run by separate Unix users on one machine, for the real-network sites test.

The test (root) only creates the users, installs the software where they can run it, and
carries files between them like a courier: each user's inbox receives the bundles, the
genesis block and the definition. /root is private (0700), so the Fabric binaries, the
chaincode server and a Python runtime are installed into a shared read-only directory."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabricml.network import binaries
from fabricml.network.binaries import REPO_ROOT, install_shared, share_read_only
from fabricml.network.chaincode import server_binary

SOURCE_DIRS = ("api", "client", "ml", "network")


@dataclass(frozen=True)
class SiteUser:
    org: str
    user: str
    uid: int
    gid: int  # the user's own group (--user-group): its gid need not equal its uid
    home: Path
    site: Path  # the site's state directory, 0700, owned by the user
    inbox: Path  # where the courier puts what other sites send

    def put(self, source: Path, name: str | None = None) -> Path:
        """Hand a file to this user (the courier's copy, owned by the user)."""
        target = self.inbox / (name or source.name)
        shutil.copy(source, target)
        return self.give(target)

    def give(self, path: Path) -> Path:
        """Make `path` (and what is under it) the user's, as its operator's own file."""
        for p in (path, *path.rglob("*")):
            os.chown(p, self.uid, self.gid)
        return path


class UnixSites:
    """Users, their homes and site directories under one throwaway root (0755)."""

    def __init__(self, root: Path, shared: Path, python: Path) -> None:
        self.root = root
        self.shared = shared
        self.python = python
        self.users: dict[str, SiteUser] = {}
        self.fingerprints: dict[str, str] = {}  # each bundle's, as read out of band

    def add(self, org: str) -> SiteUser:
        name = f"fml{os.getpid() % 100000}{org}"[:32]
        home, site, inbox = self.root / "homes" / org, self.root / "sites" / org, self.root / "inbox" / org
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                str(home),
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
        )
        entry = pwd.getpwnam(name)
        u = SiteUser(org, name, entry.pw_uid, entry.pw_gid, home, site, inbox)
        for d in (home, inbox, site):  # like an admin provisioning the org's service account
            d.mkdir(parents=True)
            u.give(d)
            d.chmod(0o700)
        self.users[org] = u
        return u

    def env(self, u: SiteUser) -> dict[str, str]:
        return {
            "HOME": str(u.home),
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "FABRICML_CACHE": str(self.shared / "fabric"),
            "PYTHONDONTWRITEBYTECODE": "1",
            # the repository belongs to root: let the user's git read its HEAD for provenance
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "safe.directory",
            "GIT_CONFIG_VALUE_0": "*",
            # the chaincode server was built for these flags (build tags are in its cache key)
            **({"GOFLAGS": os.environ["GOFLAGS"]} if os.environ.get("GOFLAGS") else {}),
        }

    def argv(self, u: SiteUser, *args: str) -> list[str]:
        return [
            "runuser",
            "-u",
            u.user,
            "--",
            "env",
            "-i",
            *(f"{k}={v}" for k, v in self.env(u).items()),
            str(self.python),
            "-m",
            "fabricml.cli",
            *args,
        ]

    def run(
        self, org: str, *args: str, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """`fabricml ARGS` as the org's user, in the user's home."""
        u = self.users[org]
        began = time.monotonic()
        result = subprocess.run(
            self.argv(u, *args), capture_output=True, text=True, timeout=timeout, cwd=u.home
        )
        print(f"  {time.monotonic() - began:5.1f} s [{org}] fabricml {' '.join(args[:3])}", flush=True)
        if check and result.returncode != 0:
            raise AssertionError(
                f"[{org}] fabricml {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def run_all(self, args_by_org: dict[str, list[str]], timeout: float = 900) -> None:
        """The orgs' commands at the same time, as separate operators would run them."""
        began = time.monotonic()
        procs = {
            org: subprocess.Popen(
                self.argv(self.users[org], *args),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=self.users[org].home,
            )
            for org, args in args_by_org.items()
        }
        failures = []
        for org, p in procs.items():
            out, _ = p.communicate(timeout=timeout)
            if p.returncode != 0:
                failures.append(f"[{org}] fabricml {' '.join(args_by_org[org])} failed:\n{out}")
        what = " ".join(next(iter(args_by_org.values()))[:2])
        print(f"  {time.monotonic() - began:5.1f} s [{', '.join(args_by_org)}] fabricml {what}", flush=True)
        assert not failures, "\n".join(failures)

    def start(self, org: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
        """`fabricml ARGS` as the org's user in the background (an agent, a service), its
        output in `log` (the test's, outside every site)."""
        u = self.users[org]
        log.parent.mkdir(exist_ok=True)
        with log.open("wb") as out:
            return subprocess.Popen(self.argv(u, *args), stdout=out, stderr=subprocess.STDOUT, cwd=u.home)

    def json(self, org: str, *args: str, check: bool = True) -> Any:
        """`fabricml ARGS --json` as the org's user: its decoded output."""
        return json.loads(self.run(org, *args, "--json", check=check).stdout)

    def processes_of(self, uid: int) -> list[int]:
        """The user's processes still running (a zombie has ended; init reaps it soon)."""
        pids = []
        for entry in Path("/proc").iterdir():
            with suppress(OSError):
                ours = entry.name.isdigit() and entry.stat().st_uid == uid
                if ours and "State:\tZ" not in (entry / "status").read_text():
                    pids.append(int(entry.name))
        return pids

    def cleanup(self) -> list[str]:
        """Stop every site (all at once, as their operators would), kill what is left of each
        user's processes, delete the users; returns what `site down` did not stop, and why."""
        downs = {
            org: subprocess.Popen(
                self.argv(u, "site", "down", "--state-dir", str(u.site)),
                cwd=u.home,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for org, u in self.users.items()
        }
        left = []
        for org, p in downs.items():
            try:
                out, _ = p.communicate(timeout=600)
            except subprocess.TimeoutExpired:
                p.kill()
                out = "site down timed out after 600 s"
            u = self.users[org]
            pids = self.processes_of(u.uid)
            if pids:
                left.append(f"{org}: pids {pids} (site down exited {p.returncode}: {out.strip()[-300:]})")
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        for u in self.users.values():
            subprocess.run(["userdel", u.user], check=False, capture_output=True)
        return left


def shared_install(root: Path, chaincode_versions: tuple[str, ...]) -> tuple[Path, Path]:
    """(shared dir, python) that every user may read and run, none may write."""
    shared = root / "shared"
    fabric = shared / "fabric"
    install_shared(binaries.ensure(), fabric)
    previous = os.environ.get("FABRICML_CACHE")
    os.environ["FABRICML_CACHE"] = str(fabric)
    try:
        for version in chaincode_versions:
            server_binary(version, shared / "unused")
    finally:
        if previous is None:
            os.environ.pop("FABRICML_CACHE")
        else:
            os.environ["FABRICML_CACHE"] = previous
    python = _python_runtime(shared / "python", root / "repo")
    share_read_only(shared)
    root.chmod(0o755)
    return shared, python


def _python_runtime(target: Path, links: Path) -> Path:
    """A venv of the system Python 3.11 that sees the repository's installed packages: the
    repository's own .venv interpreter lives under /root, which other users cannot enter.
    Under a private folder the sources and packages are reached through hard links in
    `links` (outside `shared`, whose modes are reset)."""
    system = Path("/usr/bin/python3")
    subprocess.run([str(system), "-m", "venv", "--without-pip", str(target)], check=True)
    site_packages = (
        Path(sys.prefix)
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
    )
    repo = REPO_ROOT
    if not all(_others_may_enter(p) for p in (site_packages, repo)):  # a checkout under a private folder
        site_packages = _linked_copy(site_packages, links / "site-packages")
        repo = links / "repo"  # the layout the code finds its chaincode sources by
        for d in (*SOURCE_DIRS, "chaincode"):
            _linked_copy(REPO_ROOT / d, repo / d)
    pth = next(target.glob("lib/python3*/site-packages")) / "fabricml-repo.pth"
    pth.write_text("\n".join([str(site_packages), *(str(repo / d) for d in SOURCE_DIRS)]) + "\n")
    return target / "bin" / "python"


def _others_may_enter(path: Path) -> bool:
    """Whether a user without any group of ours can reach `path` (every folder above it o+x)."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


def _linked_copy(source: Path, target: Path) -> Path:
    """`source` hard-linked under `target` (the same files, no second copy of the venv)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    argv = ["cp", "-al", str(source), str(target)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, (
        f"{source} is in a folder other users cannot enter and could not be linked to {target} "
        f"for the sites' users ({done.stderr.strip()}): clone the repository under a folder "
        "every user may enter, or on the same file system as /tmp"
    )
    return target


@contextmanager
def unix_sites(orgs: list[str], chaincode_versions: tuple[str, ...]) -> Iterator[UnixSites]:
    """Users for `orgs` and everything they need; always cleaned up, even on failure."""
    root = Path(tempfile.mkdtemp(prefix="fabricml-unix-sites-", dir="/tmp"))
    env: UnixSites | None = None
    try:
        shared, python = shared_install(root, chaincode_versions)
        env = UnixSites(root, shared, python)
        for org in orgs:
            env.add(org)
        yield env
    finally:
        left = env.cleanup() if env is not None else []
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"processes left behind after `site down`: {left}"
