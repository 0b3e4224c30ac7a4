"""What ``import oec_async`` loads: errors and models at once, aiohttp only when used.

Each check runs in a fresh interpreter, since this test process has long since imported
everything. Import *time* is measured by ``make bench``, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import oec_async

ROOT = Path(__file__).resolve().parents[2]


def _fresh(code: str) -> object:
    """Run ``code`` in a new interpreter; its last line of output is JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


HEAVY = ("aiohttp", "aiofiles", "oec_async._client", "oec_async.download")


@pytest.mark.parametrize(
    "statement",
    [
        "import oec_async",
        "from oec_async import Backup, IntegrityError, OECError, __version__",
        "import oec_async.errors, oec_async.models",
    ],
    ids=["package", "errors-and-models-by-name", "errors-and-models-modules"],
)
def test_importing_the_package_errors_or_models_does_not_load_aiohttp(statement: str) -> None:
    loaded = _fresh(
        f"import json, sys\n{statement}\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )

    assert loaded == []


def test_client_and_download_types_load_on_first_use() -> None:
    found = _fresh(
        "import json, sys\n"
        "import oec_async\n"
        "before = 'aiohttp' in sys.modules\n"
        "from oec_async import OECClient, DownloadOptions\n"
        "from oec_async._client import OECClient as Real\n"
        "from oec_async.download import DownloadOptions as RealOptions\n"
        "print(json.dumps({'before': before, 'after': 'aiohttp' in sys.modules,\n"
        "    'client': OECClient is Real and oec_async.OECClient is Real,\n"
        "    'options': DownloadOptions is RealOptions,\n"
        "    'subpackage': oec_async.download is sys.modules['oec_async.download']}))"
    )

    assert found == {
        "before": False,
        "after": True,
        "client": True,
        "options": True,
        "subpackage": True,
    }


def test_dir_lists_every_exported_name_before_any_is_used() -> None:
    found = _fresh(
        "import json, oec_async\n"
        "print(json.dumps({'missing': sorted(set(oec_async.__all__) - set(dir(oec_async)))}))"
    )

    assert found == {"missing": []}


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="no attribute 'OECClientt'"):
        _ = getattr(oec_async, "OECClientt")  # noqa: B009
    with pytest.raises(ImportError, match="OECClientt"):
        from oec_async import OECClientt  # type: ignore[attr-defined]  # noqa: F401
