"""Fixtures for the social-account connector tests: a client whose requests respx answers, a
sleep that records instead of waiting."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx


class Sleeps(list[float]):
    """Records the pauses a connector asked for."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def router() -> Iterator[respx.Router]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def client(router: respx.Router) -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c
