import shutil
import tempfile
from pathlib import Path

import pytest

from e2e.repo import copy_repo


@pytest.fixture(scope="session")
def scratch():
    """A private directory under /tmp for repo copies; removed at the end."""
    d = Path(tempfile.mkdtemp(prefix="smith-e2e-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def repo_a(scratch):
    return copy_repo(scratch / "a" / "smith")


# The same markers as the unit tests (debian_mirror, ...).
from smith.conftest import pytest_configure  # noqa: E402,F401
