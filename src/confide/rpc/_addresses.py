"""Lists of ``HOST:PORT`` addresses (``--keys``, ``--scheduler``) and the gRPC
target that fails over among them.

Several services of one kind let a node or a worker go on when one host is lost:
enrolment tries the listed key services in order, and a worker's channel to the
scheduler lists every scheduler node, so gRPC's ``pick_first`` policy connects to
the first that answers and moves to the next when that one goes away.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["MAX_ADDRESSES", "address_list", "failover_target"]

#: At most this many addresses in one list.
MAX_ADDRESSES = 16


def address_list(text: str) -> tuple[str, ...]:
    """The addresses of ``HOST:PORT[,HOST:PORT...]``, in the order given.

    Raises:
        ValueError: an entry is not ``HOST:PORT`` (the message names it), or the
            list is empty or longer than :data:`MAX_ADDRESSES`.
    """
    entries = tuple(e.strip() for e in text.split(","))
    if not 1 <= len(entries) <= MAX_ADDRESSES:
        raise ValueError(f"give 1 to {MAX_ADDRESSES} addresses, not {len(entries)}")
    for entry in entries:
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"HOST:PORT[,HOST:PORT...], not {entry!r}")
    return entries


def failover_target(addresses: Sequence[str]) -> str:
    """The gRPC target for ``addresses`` (from :func:`address_list`).

    One address is the target itself (a name that resolves to several addresses
    already fails over among them). Several must be IP addresses of one family:
    ``ipv4:A:P,B:P`` or ``ipv6:[A]:P,[B]:P``, which gRPC's resolver takes as one
    list.

    Raises:
        ValueError: several addresses that are not all IPv4 or all IPv6 literals.
    """
    if len(addresses) == 1:
        return addresses[0]
    families = set()
    for address in addresses:
        host = address.rpartition(":")[0].strip("[]")
        try:
            families.add(ipaddress.ip_address(host).version)
        except ValueError:
            raise ValueError(
                f"several addresses must be IP addresses, not {host!r} (a name that "
                "resolves to several addresses can be given alone)") from None
    if len(families) != 1:
        raise ValueError("several addresses must all be IPv4 or all IPv6")
    return f"ipv{families.pop()}:{','.join(addresses)}"
