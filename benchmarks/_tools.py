"""The external contenders and servers: found, or installed with the system's package
manager, and their versions recorded for RESULTS.md."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

__all__ = ["ensure_tools", "tool_versions"]

# command -> Debian package
_PACKAGES = {
    "nginx": "nginx-light",
    "curl": "curl",
    "wget": "wget",
    "aria2c": "aria2",
    "jq": "jq",
    "xargs": "findutils",
    "sha256sum": "coreutils",
    "tee": "coreutils",
    "cut": "coreutils",
    "openssl": "openssl",
    "bash": "bash",
}
_NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


def which(command: str) -> str | None:
    found = shutil.which(command)
    if found is None and command == "nginx":
        found = next((p for p in _NGINX_PATHS if os.path.exists(p)), None)
    return found


def ensure_tools() -> None:
    missing = [cmd for cmd in _PACKAGES if which(cmd) is None]
    if not missing:
        return
    packages = sorted({_PACKAGES[cmd] for cmd in missing})
    print(f"installing {' '.join(packages)} (missing: {' '.join(missing)})", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-q", *packages]
    if subprocess.run(install, env=env, check=False, capture_output=True).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    still = [cmd for cmd in _PACKAGES if which(cmd) is None]
    if still:
        raise SystemExit(f"could not install: {' '.join(still)}")


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def tool_versions() -> dict[str, str]:
    nginx = which("nginx") or "nginx"
    return {
        "nginx": _first_line([nginx, "-v"]),
        "curl": _first_line(["curl", "--version"]).split(" (")[0],
        "wget": _first_line(["wget", "--version"]),
        "aria2c": _first_line(["aria2c", "--version"]),
        "jq": _first_line(["jq", "--version"]),
        "openssl": _first_line(["openssl", "version"]),
    }
