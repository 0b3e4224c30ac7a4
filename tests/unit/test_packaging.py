"""The distribution holds what its metadata and documents claim: the MIT licence text,
the security policy and its contact, and an sdist from which ``make test`` runs."""

from __future__ import annotations

import email
import tarfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hatchling.builders.sdist import SdistBuilder

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tarfile.TarFile]:
    out = tmp_path_factory.mktemp("dist")
    [path] = SdistBuilder(str(ROOT)).build(directory=str(out), versions=["standard"])
    with tarfile.open(path) as archive:
        yield archive


def test_the_licence_file_is_the_mit_licence_the_metadata_names() -> None:
    text = (ROOT / "LICENSE").read_text()

    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 oec-async maintainers" in text


def test_security_policy_and_metadata_give_the_same_private_contact() -> None:
    policy = (ROOT / "SECURITY.md").read_text()
    [contact] = PYPROJECT["project"]["maintainers"]

    assert contact["email"] in policy
    assert "private vulnerability reporting" in policy


def test_the_sdist_has_the_package_tests_documents_and_build_files(
    sdist: tarfile.TarFile,
) -> None:
    names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}

    for required in (
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "SECURITY.md",
        "Makefile",
        ".ci/run",
        "pyproject.toml",
        "PKG-INFO",
        "oec_async/__init__.py",
        "oec_async/py.typed",
        "oec_async/archive/__init__.py",
        "tests/conftest.py",
        "tests/archive/test_prune.py",
        "benchmarks/README.md",
    ):
        assert required in names, required
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    assert not any(name.startswith((".venv/", "benchmarks/.work/")) for name in names)
    # Every module of the package is shipped.
    package = {str(p.relative_to(ROOT)) for p in (ROOT / "oec_async").rglob("*.py")}
    assert package <= names


def test_the_sdist_metadata_names_the_licence_file_and_contact(sdist: tarfile.TarFile) -> None:
    member = next(m for m in sdist.getmembers() if m.name.endswith("/PKG-INFO"))
    handle = sdist.extractfile(member)
    assert handle is not None
    metadata = email.message_from_bytes(handle.read())

    assert metadata["License-Expression"] == "MIT"
    assert metadata["License-File"] == "LICENSE"
    assert "security@oec-async.dev" in metadata["Maintainer-email"]
