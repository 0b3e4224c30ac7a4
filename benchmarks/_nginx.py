"""nginx on loopback serving the simulator's storage folder (sendfile on), so that the
server is never the bottleneck of a download benchmark; with ``tls=`` it serves https
only, TLS 1.3 only, with the harness's own certificate. (Over TLS nginx encrypts in user
space unless the kernel offers kTLS, so during the https runs it takes CPU of its own.)"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from benchmarks._tls import TLSFiles
from benchmarks._tools import which

__all__ = ["Nginx"]

_CONFIG = """\
{user}worker_processes 1;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/tmp_body;
    proxy_temp_path {prefix}/tmp_proxy;
    fastcgi_temp_path {prefix}/tmp_fastcgi;
    uwsgi_temp_path {prefix}/tmp_uwsgi;
    scgi_temp_path {prefix}/tmp_scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port}{ssl};
        {tls}
        root {root};
        {limit}
        location / {{ }}
    }}
}}
"""


_TLS = """\
ssl_certificate {tls.certificate};
        ssl_certificate_key {tls.key};
        ssl_protocols TLSv1.3;
        ssl_conf_command Options KTLS;"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """``with Nginx(root, prefix, limit_rate="50m", tls=files) as n: n.url``"""

    def __init__(
        self,
        root: Path,
        prefix: Path,
        *,
        limit_rate: str | None = None,
        tls: TLSFiles | None = None,
    ) -> None:
        self.root = root
        self.prefix = prefix
        self.limit_rate = limit_rate
        self.tls = tls
        self.port = _free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        self.prefix.mkdir(parents=True, exist_ok=True)
        config = self.prefix / "nginx.conf"
        config.write_text(
            _CONFIG.format(
                user="user root;\n" if os.geteuid() == 0 else "",
                prefix=self.prefix,
                port=self.port,
                root=self.root,
                limit=f"limit_rate {self.limit_rate};" if self.limit_rate else "",
                ssl=" ssl" if self.tls else "",
                tls=_TLS.format(tls=self.tls) if self.tls else "",
            )
        )
        binary = which("nginx")
        if binary is None:
            raise SystemExit("nginx is not installed")
        self._process = subprocess.Popen(
            [binary, "-p", str(self.prefix), "-c", str(config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self._process.poll() is not None:
                    log = (self.prefix / "error.log").read_text(errors="replace")
                    raise SystemExit(f"nginx failed to start:\n{log}") from None
                time.sleep(0.05)
        raise SystemExit("nginx did not start listening")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
