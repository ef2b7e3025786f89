from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.datasets import Dataset
from tests.training import tiny_data


@pytest.fixture
def tiny_text_dataset(tmp_path: Path) -> Dataset:
    return tiny_data.tiny_text_dataset(tmp_path)


@pytest.fixture
def tiny_boston_dataset() -> Dataset:
    return tiny_data.tiny_boston_dataset()
