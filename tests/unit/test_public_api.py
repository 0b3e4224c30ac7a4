"""What users import: every name API.md promises, from the top-level package."""

from __future__ import annotations

import enum
import importlib
import re
import types
import uuid

import attrs
import pytest

import oec_async
from oec_async import NotFoundError, errors
from oec_async.cli._render import short_error

PROMISED = {
    # API.md section 2: the client, the models and every error.
    "OECClient",
    "Backup",
    "BackupPage",
    "DownloadURLs",
    "BackupStatus",
    "BackupType",
    "OECError",
    "ConfigurationError",
    "APIError",
    "BadRequestError",
    "AuthenticationError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "ServerError",
    "APIConnectionError",
    "APITimeoutError",
    "DownloadError",
    "IntegrityError",
    "InsufficientSpaceError",
    # Sections 3 and 5: what download_backup and pull_latest return.
    "BackupDownload",
    "DownloadedFile",
    "PullResult",
    # Added by this SDK, used in its signatures.
    "BatchProgress",
    "DownloadOptions",
    "ProgressEvent",
    "NoCompletedBackupError",
    # Section 11: the local archive, for apps that do what verify/status/prune do.
    "verify_archive",
    "VerifyResult",
    "inventory",
    "archive_status",
    "BackupFolder",
    "EnvironmentSummary",
    "plan_retention",
    "RetentionPolicy",
    "prune",
    "PruneResult",
    # Sections 8 to 10: discovery, sharding and on-demand backups.
    "Project",
    "Environment",
    "EnvironmentStatus",
    "BackupFailedError",
    "WaitTimeoutError",
    "shard_of",
}


def test_every_promised_name_is_exported_from_the_package() -> None:
    assert set(oec_async.__all__) >= PROMISED
    for name in oec_async.__all__:
        assert getattr(oec_async, name) is not None, name


def test_every_exported_error_is_an_oec_error() -> None:
    for name in oec_async.__all__:
        value = getattr(oec_async, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, oec_async.OECError), name


def test_summary_cell_shows_the_servers_reason_not_the_path() -> None:
    env = uuid.uuid4()
    error = NotFoundError(
        "Environment not found", status=404, method="GET", path=f"/environments/{env}/backups"
    )

    cell = short_error(error)

    assert cell == "NotFoundError: Environment not found"
    assert len(short_error(RuntimeError("x" * 500))) == 70


# -- __all__ of every public module is what it exports -------------------------------------

PUBLIC_MODULES = [
    "oec_async",
    "oec_async.testing",
    "oec_async.download",
    "oec_async.errors",
    "oec_async.models",
]


def defined_public_names(module: types.ModuleType) -> set[str]:
    """Public names a module defines (a module) or re-exports from its own package (a
    package): classes and functions whose ``__module__`` is the module, or inside the
    package. Imported helpers of other packages, submodules and constants are left out."""
    package = module.__name__
    inside = package + "." if hasattr(module, "__path__") else None
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        owner = getattr(value, "__module__", None)
        if not isinstance(owner, str) or not isinstance(value, type | types.FunctionType):
            continue
        if owner == package or (inside is not None and owner.startswith(inside)):
            names.add(name)
    return names


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_lists_exactly_what_the_module_exports(name: str) -> None:
    module = importlib.import_module(name)
    listed = set(module.__all__)

    assert len(listed) == len(module.__all__), "a name is listed twice"
    assert not [n for n in listed if not hasattr(module, n)], "listed but missing"
    assert defined_public_names(module) - listed == set(), "exported but not listed"


# -- the exception tree drawn at the top of errors.py is the real one ----------------------

_BRANCH = re.compile(r"^(?P<indent>(?:│   |    )*)(?:├── |└── )(?P<name>[A-Za-z]+)")


def drawn_tree() -> dict[str, str | None]:
    """``class name -> parent name`` as drawn in the errors module's docstring."""
    doc = errors.__doc__ or ""
    lines = doc.split("::", 1)[1].strip("\n").splitlines()
    root = lines[0].strip()
    parents: dict[str, str | None] = {root: None}
    stack = [root]  # stack[d] is the last class drawn at depth d
    for line in lines[1:]:
        if not line.strip():
            break
        match = _BRANCH.match(line.strip("\n")[4:])  # the drawing is indented by 4
        if match is None:
            continue  # a continuation of a description
        depth = len(match["indent"]) // 4 + 1
        del stack[depth:]
        parents[match["name"]] = stack[depth - 1]
        stack.append(match["name"])
    return parents


def test_the_drawn_exception_tree_matches_the_classes() -> None:
    drawn = drawn_tree()
    actual: dict[str, str | None] = {}
    for name in errors.__all__:
        cls = getattr(errors, name)
        family = [base for base in cls.__bases__ if issubclass(base, errors.OECError)]
        actual[name] = family[0].__name__ if family else None

    assert drawn == actual


def test_the_tree_parser_sees_nesting() -> None:
    drawn = drawn_tree()

    assert drawn["APITimeoutError"] == "APIConnectionError"
    assert drawn["ConflictError"] == "APIError"
    assert drawn["WaitTimeoutError"] == "OECError"


def test_every_model_class_is_a_frozen_attrs_class() -> None:
    models = importlib.import_module("oec_async.models")
    classes = [
        getattr(models, name)
        for name in models.__all__
        if not issubclass(getattr(models, name), enum.Enum)
    ]

    assert len(classes) == 9
    for cls in classes:
        assert attrs.has(cls), cls
        instance = object.__new__(cls)  # no fields needed to see that writes are refused
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(instance, attrs.fields(cls)[0].name, None)
