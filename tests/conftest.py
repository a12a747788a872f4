import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder from ARCHSEARCH_DATA; tests that need it skip with the reason when it is absent."""
    root = os.environ.get("ARCHSEARCH_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("ARCHSEARCH_DATA is not set to the shared data folder (.ci/run sets it to ../shared/data)")
    return Path(root)
