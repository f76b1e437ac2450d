"""Shared fixtures: every test gets a clean copy of the environment variables, and the ports
it reserved with ``tests.helpers.free_port`` are released when it ends."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import release_ports


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def released_ports() -> Iterator[None]:
    try:
        yield
    finally:
        release_ports()
