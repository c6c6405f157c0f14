"""A PostgreSQL cluster of the test's own, which the test may stop, restart and start.

The shared server from ``.ci/run`` (GOVERNANCE_BOT_TEST_PG_URL) must never be restarted by one
test, so tests of a database restart use this fixture: ``initdb`` in a temporary folder, a free
port, ``pg_ctl`` to start/stop/restart it. As root, PostgreSQL refuses to run, so the cluster runs
as ``nobody``. Without PostgreSQL binaries the test is skipped, except in CI where it fails.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PgServer", "pg_server"]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) for x in Path(p).parent.parent.name.split(".")
                                  if x.isdigit()])
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self, bin_dir: Path, root: Path):
        self.bin = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://governance@127.0.0.1:{self.port}/governance_test"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = " ".join(shlex.quote(a) for a in args)
        if os.geteuid() == 0:
            argv = ["su", "nobody", "-s", "/bin/sh", "-c", command]
        else:
            argv = ["/bin/sh", "-c", command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr}\n"
                               f"{log[-2000:]}")

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "governance",
                  "--auth=trust", "--no-sync")
        self.start()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                  "governance", "governance_test")

    def _options(self) -> str:
        return (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=60")

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", self._options(),
                  "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        """Stop (closing every client connection) and start again on the same port."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-o",
                  self._options(), "-l", str(self.root / "log"), "-w", "restart")


@pytest.fixture
def pg_server() -> Iterator[PgServer]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        reason = "PostgreSQL binaries (/usr/lib/postgresql/*/bin/initdb) are not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="gb-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
    server = PgServer(bin_dir, root)
    server.init()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):  # already stopped
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
