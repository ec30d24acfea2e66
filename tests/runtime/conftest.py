"""Runtime tests get a private, empty on-disk cache folder each (never the user's)."""
import pytest

from torch_mlir_backend.runtime import disk_cache


@pytest.fixture(autouse=True)
def _private_disk_cache(tmp_path, monkeypatch):
    folder = tmp_path / "disk-cache"
    monkeypatch.setenv(disk_cache.ENV_CACHE_DIR, str(folder))
    monkeypatch.delenv(disk_cache.ENV_DISABLE, raising=False)
    disk_cache._warned.clear()
    yield folder
