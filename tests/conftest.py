from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _mirror() -> Path | None:
    env = os.environ.get("AUTOSIZE_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture(autouse=True)
def _fixed_seeds() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny networks train several times faster on one thread on a shared machine.

    Opt in per module: ``pytestmark = [..., pytest.mark.usefixtures("one_torch_thread")]``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The real-data mirror (CI has it at ../shared/data); tests that need it skip without it."""
    path = _mirror()
    if path is None:
        pytest.skip("no data mirror: set AUTOSIZE_DATA_DIR or place it at ../shared/data")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database (see tests/pg.py); skips when none can be had."""
    import pg

    why = pg.unavailable()
    if why and os.environ.get("CI") == "true":
        # CI installs PostgreSQL (.ci/run): its tests must not vanish from CI as skips
        pytest.fail(f"CI=true and no PostgreSQL: {why}", pytrace=False)
    if why:
        pytest.skip(f"no PostgreSQL: {why}")
    with pg.server() as url:
        yield url
