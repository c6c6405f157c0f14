"""A real Dovecot IMAP server for the email connector's tests, plus a proxy that drops connections.

``dovecot_server`` (session scope) starts Dovecot from Debian's ``dovecot-imapd`` package as a
private instance: its own config, run and mail folders in a temporary directory, listening on a
free unprivileged port on 127.0.0.1, plaintext login allowed (localhost only, no SSL), users from
a passwd-file. It is stopped when the session ends.

Where the ``dovecot`` binary is missing, the fixture installs the package only when ``CI=true``
or ``GOVERNANCE_BOT_INSTALL_SERVICES=1``; otherwise the tests are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["CuttingProxy", "DovecotServer", "dovecot_server"]

PASSWORD = "not-a-real-password-7"
USERS = ("journal", "tutor", "contract")  # "contract": tests/contract/cases_imap.py


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _find_dovecot() -> str | None:
    for candidate in (shutil.which("dovecot"), "/usr/sbin/dovecot"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _ensure_dovecot() -> str:
    binary = _find_dovecot()
    if binary:
        return binary
    allowed = (os.environ.get("CI", "").lower() == "true"
               or os.environ.get("GOVERNANCE_BOT_INSTALL_SERVICES") == "1")
    if not allowed:
        pytest.skip("Dovecot is not installed (Debian package dovecot-imapd); install it or set "
                    "GOVERNANCE_BOT_INSTALL_SERVICES=1 to let the tests install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "-n", "apt-get"]
    for args in (["update"], ["install", "-y", "dovecot-imapd"]):
        proc = subprocess.run([*apt, *args], env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0 and args[0] == "install":
            pytest.fail(f"could not install dovecot-imapd: {proc.stderr[-2000:]}")
    binary = _find_dovecot()
    if not binary:
        pytest.fail("dovecot-imapd installed but no dovecot binary found")
    return binary


@dataclass
class DovecotServer:
    """A running private Dovecot: where it listens, who may log in, and how to control it."""

    binary: str
    root: Path
    host: str = "127.0.0.1"
    port: int = 0
    password: str = PASSWORD
    users: tuple[str, ...] = USERS
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    def maildir(self, user: str) -> Path:
        return self.root / "home" / user / "Maildir"

    def doveadm(self, *args: str) -> subprocess.CompletedProcess[str]:
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        return subprocess.run([doveadm, "-c", str(self.config), *args],
                              capture_output=True, text=True, check=False)

    def kick(self, user: str) -> None:
        """Disconnect every IMAP session of ``user`` (as an admin or a crash would)."""
        self.doveadm("kick", user)

    def log_text(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _write_config(server: DovecotServer) -> None:
    root = server.root
    me = pwd.getpwuid(os.geteuid())
    if os.geteuid() == 0:
        # Dovecot will not run its login or mail processes as root: use its own system users
        # (created by the Debian package) and give the mail folders to them.
        login_user, internal_user = "dovenull", "dovecot"
        mail_pw = pwd.getpwnam("dovecot")
    else:
        login_user = internal_user = me.pw_name
        mail_pw = me
    uid, gid = mail_pw.pw_uid, mail_pw.pw_gid
    for sub in ("run", "state", "home"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    lines = [f"{u}:{{PLAIN}}{server.password}:{uid}:{gid}::{root / 'home' / u}::"
             for u in server.users]
    (root / "passwd").write_text("\n".join(lines) + "\n")
    for u in server.users:
        (root / "home" / u).mkdir(exist_ok=True)
    server.config.write_text(f"""
base_dir = {root / 'run'}
state_dir = {root / 'state'}
log_path = {root / 'dovecot.log'}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal_user).pw_gid).gr_name}
first_valid_uid = {min(uid, 100)}
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {gid}
login_trusted_networks = 127.0.0.1/8
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root / 'passwd'}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root / 'passwd'}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {server.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
service anvil {{
  unix_listener anvil {{
    mode = 0666
  }}
}}
""")
    if os.geteuid() == 0:
        for path in [root / "home", *(root / "home").iterdir()]:
            os.chown(path, uid, gid)
        os.chmod(root, 0o755)


def _wait_for_port(host: str, port: int, timeout: float,
                   proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """A running Dovecot with users ``journal`` and ``tutor`` (empty mailboxes)."""
    binary = _ensure_dovecot()
    # not pytest's tmp_path: as root that is mode 0700 and Dovecot's own users must read it
    root = Path(tempfile.mkdtemp(prefix="governance-bot-dovecot-"))
    root.chmod(0o755)
    server = DovecotServer(binary=binary, root=root, port=_free_port())
    _write_config(server)
    proc = subprocess.Popen([binary, "-F", "-c", str(server.config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    server.process = proc
    try:
        if not _wait_for_port(server.host, server.port, 15, proc):
            proc.terminate()
            out = proc.communicate(timeout=5)[0].decode(errors="replace")
            pytest.fail(f"Dovecot did not start: {out[-2000:]}\n{server.log_text()[-2000:]}")
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()
        shutil.rmtree(root, ignore_errors=True)


class CuttingProxy:
    """A TCP proxy in front of the IMAP server that cuts the *first* ``cuts`` connections after
    ``cut_after`` bytes from the server, like a network drop in the middle of a fetch.

    With ``cut_on`` instead, the first ``cuts`` commands containing those bytes (e.g.
    ``b"BODY.PEEK[]"``) cut their connection: the drop comes mid-fetch, before the server answers,
    whatever happened on earlier connections.
    Later connections pass through untouched, so a client that reconnects can carry on; with
    ``cuts=0`` the proxy only watches. Everything clients sent is kept (``client_bytes``) so a
    test can count the commands that really went over the wire.
    """

    def __init__(self, target: tuple[str, int], cut_after: int | None = None, cuts: int = 1,
                 cut_on: bytes | None = None):
        self.target = target
        self.cut_after = cut_after
        self.cut_on = cut_on
        self.cuts_left = cuts
        self.cuts_done = 0
        self.connections = 0
        self.client_bytes = bytearray()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                # cut_after: decided per connection; cut_on: decided when the command is sent
                cutting = self.cut_on is None and self.cuts_left > 0
                if cutting:
                    self.cuts_left -= 1
            cut = self.cut_after if cutting else None
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, None, self.cut_on, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, cut, None, False),
                             daemon=True).start()

    def commands(self, fragment: bytes) -> int:
        """How many times clients sent ``fragment`` (e.g. ``b" UID FETCH "``)."""
        with self._lock:
            return bytes(self.client_bytes).count(fragment)

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int | None,
              cut_on: bytes | None = None, from_client: bool = False) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if from_client:
                    with self._lock:
                        self.client_bytes += data
                if cut_on is not None and cut_on in data:
                    with self._lock:
                        cutting = self.cuts_left > 0
                        if cutting:
                            self.cuts_left -= 1
                            self.cuts_done += 1
                    if cutting:
                        break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    with self._lock:
                        self.cuts_done += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=2)
