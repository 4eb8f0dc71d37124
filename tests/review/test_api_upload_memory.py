"""The API's memory under uploads (review finding R8, the part the head-only test leaves out):
an auditor's uploads are refused before their bodies are read, and an admin's upload, even
one over the limit, streams to disk. The review saw RSS go from 265 to 920 MiB with twelve
auditor uploads of ~63 MiB; here the API's resident memory is sampled while six auditors
send 48 MiB bodies at once and an admin sends one over the 64 MiB limit (413) and one of
40 MiB (registered)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from fabricml.network.network import Network
from fabricml.network.topology import HOST

from .conftest import client_context, identity_files, unique

MIB = 1 << 20


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class Sampler(threading.Thread):
    """The largest RSS of a process while it runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, _rss_mib(pid), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, _rss_mib(self.pid))


def _upload(network: Network, identity: str, size: int, chunked: bool, answers: list[bytes]) -> None:
    """One multipart model upload of `size` bytes of file, sent as fast as the API takes it."""
    port = network.topology.org("org1").api_port
    ctx = client_context(network, "org1", identity_files(network, "org1", identity))
    name = unique("big")
    meta = f'{{"name": "{name}", "version": "1"}}'
    part = (
        f'--B\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{meta}\r\n'
        '--B\r\nContent-Disposition: form-data; name="files"; filename="w.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = b"\r\n--B--\r\n"
    length = f"Content-Length: {len(part) + size + len(tail)}"
    framing = b"Transfer-Encoding: chunked" if chunked else length.encode()
    head = b"POST /api/v1/models HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
    block = os.urandom(MIB)

    def frame(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data

    with socket.create_connection((HOST, port), timeout=60) as raw, ctx.wrap_socket(raw) as tls:
        try:
            tls.sendall(head + framing + b"\r\n\r\n" + frame(part))
            for _ in range(size // MIB):
                tls.sendall(frame(block))
            tls.sendall(frame(tail) + (b"0\r\n\r\n" if chunked else b""))
        except OSError:
            pass  # refused early: the API closed the connection without reading the rest
        try:
            answers.append(tls.recv(64))
        except OSError as exc:
            answers.append(repr(exc).encode())


def test_uploads_keep_the_apis_memory_bounded(network: Network) -> None:
    pid = network.processes.records()[network.topology.org("org1").api_name].pid
    before = _rss_mib(pid)
    sampler = Sampler(pid)
    sampler.start()
    auditors: list[bytes] = []
    too_large: list[bytes] = []
    accepted: list[bytes] = []
    uploads = [("auditor", 48 * MIB, False, auditors)] * 6
    uploads += [("admin", 72 * MIB, True, too_large), ("admin", 40 * MIB, False, accepted)]
    threads = [threading.Thread(target=_upload, args=(network, *u)) for u in uploads]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    sampler.done.set()
    sampler.join()
    growth = sampler.peak - before
    print(f"API RSS {before:.0f} MiB before, peak {sampler.peak:.0f} MiB (+{growth:.0f}) "
          f"over {time.monotonic() - started:.1f} s")  # fmt: skip
    assert [a[:12] for a in auditors] == [b"HTTP/1.1 403"] * 6, auditors
    assert too_large and too_large[0].startswith(b"HTTP/1.1 413"), too_large
    assert accepted and accepted[0].startswith(b"HTTP/1.1 201"), accepted
    # 6 x 48 + 72 + 40 MiB read into memory would be 400 MiB; streaming costs a few buffers each.
    assert growth < 64, f"the API's RSS grew by {growth:.0f} MiB while receiving uploads"
