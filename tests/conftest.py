"""Settings every test shares."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Property tests check results, not speed: on a loaded 2-core CI machine one example
# may take longer than hypothesis's default 200 ms deadline (or generating data may
# look "too slow"), which would fail the run for a reason that says nothing about the code.
settings.register_profile("confide", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("confide")
