"""Address lists (``--keys``, ``--scheduler``) and the gRPC target that fails over."""

from __future__ import annotations

import pytest

from confide.rpc import MAX_ADDRESSES, address_list, failover_target


def test_one_address_is_its_own_target() -> None:
    assert failover_target(address_list("scheduler.internal:17780")) == \
        "scheduler.internal:17780"


def test_several_ipv4_addresses_make_one_ipv4_target() -> None:
    assert failover_target(address_list("10.0.0.2:17780, 10.0.0.3:17780")) == \
        "ipv4:10.0.0.2:17780,10.0.0.3:17780"


def test_several_ipv6_addresses_make_one_ipv6_target() -> None:
    assert failover_target(address_list("[fd00::2]:17780,[fd00::3]:17781")) == \
        "ipv6:[fd00::2]:17780,[fd00::3]:17781"


@pytest.mark.parametrize(("text", "message"), [
    ("sched-a:17780,sched-b:17780", "must be IP addresses, not 'sched-a'"),
    ("10.0.0.2:17780,[fd00::3]:17780", "all be IPv4 or all IPv6"),
])
def test_several_addresses_must_be_ip_literals_of_one_family(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        failover_target(address_list(text))


def test_the_list_is_capped() -> None:
    assert len(address_list(",".join(f"10.0.0.{i}:1" for i in range(MAX_ADDRESSES)))) == \
        MAX_ADDRESSES
    with pytest.raises(ValueError, match=f"not {MAX_ADDRESSES + 1}"):
        address_list(",".join(f"10.0.0.{i}:1" for i in range(MAX_ADDRESSES + 1)))
