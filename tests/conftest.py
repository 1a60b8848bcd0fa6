"""Settings every test shares."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from confide.execution._staging import remove_private_area

# Property tests check results, not speed: on a loaded 2-core CI machine one example
# may take longer than hypothesis's default 200 ms deadline (or generating data may
# look "too slow"), which would fail the run for a reason that says nothing about the code.
settings.register_profile("confide", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("confide")


@pytest.fixture(autouse=True, scope="session")
def _no_private_area_left() -> Iterator[None]:
    """Tests that stage in this process (``Stager``) put their files under this
    process's private area, as a worker does; remove it at the end, as the
    supervisor does for a worker, so a run leaves nothing in /dev/shm."""
    yield
    remove_private_area(os.getpid())
