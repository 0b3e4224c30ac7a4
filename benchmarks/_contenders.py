"""The download contenders: the commands people run to fetch (and check) one presigned URL.

Each contender is the command line a user would type, given a fresh output folder. Over
https every tool is told to trust the harness's CA its own way; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs

__all__ = ["Contender", "Downloads"]


@attrs.frozen
class Contender:
    name: str
    command: Callable[[Path], list[str]]  # given a fresh output folder
    check: Callable[[Path], bool]  # did it produce the file(s)?
    verifies: bool


# The verifying shell pipelines, with their arguments as positional parameters ($1 the
# file, $2 the URL, $3 the expected SHA-256, the rest curl's TLS options), so that
# nothing is quoted into the script. Each exits non-zero unless the digest matches.
_CURL_THEN_OPENSSL = (
    'f=$1 url=$2 want=$3; shift 3; curl -sSf "$@" -o "$f" "$url" && '
    'test "$(openssl dgst -sha256 -r "$f" | cut -d" " -f1)" = "$want"'
)
_CURL_TEE_OPENSSL = (
    "set -o pipefail; f=$1 url=$2 want=$3; shift 3; "
    'got=$(curl -sSf "$@" "$url" | tee "$f" | openssl dgst -sha256 -r | cut -d" " -f1) && '
    'test "$got" = "$want"'
)
_CURL_THEN_SHA256SUM = (
    'f=$1 url=$2 want=$3; shift 3; curl -sSf "$@" -o "$f" "$url" && '
    'echo "$want  $f" | sha256sum -c --quiet'
)


@attrs.frozen
class Downloads:
    """The contenders for one file behind ``url`` (https when ``ca`` is given)."""

    url: str
    size: int
    sha256: str
    backup_id: str
    python: str
    ca: Path | None = None

    # -- what every contender shares -------------------------------------------------

    def _file_ok(self, out: Path) -> bool:
        target = out / "dump.sql"
        return target.exists() and target.stat().st_size == self.size

    def _oec_ok(self, out: Path) -> bool:
        found = list(out.glob("*/*/dump.sql"))
        return len(found) == 1 and found[0].stat().st_size == self.size

    def _curl_tls(self) -> list[str]:
        return ["--cacert", str(self.ca)] if self.ca else []

    def _curl_name(self) -> str:
        return "curl --cacert" if self.ca else "curl"

    def _pipeline(self, shell: str, script: str, name: str) -> Contender:
        return Contender(
            name,
            lambda o: [
                shell,
                "-c",
                script,
                shell,
                str(o / "dump.sql"),
                self.url,
                self.sha256,
                *self._curl_tls(),
            ],
            self._file_ok,
            True,
        )

    # -- the contenders --------------------------------------------------------------

    def curl(self) -> Contender:
        """``curl -o FILE``: the reference, verifies nothing."""
        return Contender(
            f"{self._curl_name()} -o",
            lambda o: ["curl", "-sSf", *self._curl_tls(), "-o", str(o / "dump.sql"), self.url],
            self._file_ok,
            False,
        )

    def curl_then_openssl(self) -> Contender:
        """``curl -o FILE && openssl dgst -sha256 FILE``, compared with the expected digest."""
        return self._pipeline(
            "sh", _CURL_THEN_OPENSSL, f"{self._curl_name()} -o && openssl dgst -sha256"
        )

    def curl_tee_openssl(self) -> Contender:
        """``curl URL | tee FILE | openssl dgst -sha256``: hashing while receiving."""
        return self._pipeline(
            "bash", _CURL_TEE_OPENSSL, f"{self._curl_name()} | tee | openssl dgst -sha256"
        )

    def curl_then_sha256sum(self) -> Contender:
        """``curl -o FILE && sha256sum -c``: the recipe most often written down."""
        return self._pipeline("sh", _CURL_THEN_SHA256SUM, f"{self._curl_name()} -o && sha256sum -c")

    def wget(self) -> Contender:
        tls = [f"--ca-certificate={self.ca}"] if self.ca else []
        return Contender(
            "wget --ca-certificate" if self.ca else "wget",
            lambda o: ["wget", "-q", *tls, "-O", str(o / "dump.sql"), self.url],
            self._file_ok,
            False,
        )

    def aria2c(self, connections: int, *, verify: bool) -> Contender:
        tls = [f"--ca-certificate={self.ca}"] if self.ca else []
        check = [f"--checksum=sha-256={self.sha256}"] if verify else []
        name = f"aria2c -x{connections} -s{connections}"
        name += " --ca-certificate" if self.ca else ""
        name += " --checksum" if verify else ""
        return Contender(
            name,
            lambda o: [
                "aria2c",
                "-q",
                f"-x{connections}",
                f"-s{connections}",
                *check,
                *tls,
                "--allow-overwrite=true",
                "-d",
                str(o),
                "-o",
                "dump.sql",
                self.url,
            ],
            self._file_ok,
            verify,
        )

    def oec(
        self,
        *,
        segments: int | None = None,
        per_host: int | None = None,
        probe: float | None = None,
        label: str = "",
    ) -> Contender:
        """``download_backup`` in a fresh process (API calls, manifest and all)."""
        arguments: list[str] = []
        if segments is not None:
            arguments += ["--segments", str(segments)]
        if per_host is not None:
            arguments += ["--max-connections-per-host", str(per_host)]
        if probe is not None:
            arguments += ["--segment-probe", str(probe)]
        if self.ca is not None:
            arguments += ["--cafile", str(self.ca)]
        name = "oec_async download_backup" + (f" ({label})" if label else "")
        return Contender(
            name,
            lambda o: [
                self.python,
                "-m",
                "benchmarks.oec_download",
                self.backup_id,
                str(o),
                *arguments,
            ],
            self._oec_ok,
            True,
        )
