"""A minimal DER *encoder* for the few ASN.1 types the sim PCK extension needs.

Only used to build sim certificates; never to parse untrusted input.
"""

from __future__ import annotations

__all__ = ["der_enumerated", "der_integer", "der_octets", "der_oid", "der_sequence"]


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def der_sequence(*items: bytes) -> bytes:
    """SEQUENCE of already-encoded items."""
    return _tlv(0x30, b"".join(items))


def der_octets(value: bytes) -> bytes:
    """OCTET STRING."""
    return _tlv(0x04, value)


def _int_body(value: int) -> bytes:
    if value < 0:
        raise ValueError("only non-negative integers are supported")
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def der_integer(value: int) -> bytes:
    """INTEGER (non-negative)."""
    return _tlv(0x02, _int_body(value))


def der_enumerated(value: int) -> bytes:
    """ENUMERATED (non-negative)."""
    return _tlv(0x0A, _int_body(value))


def der_oid(dotted: str) -> bytes:
    """OBJECT IDENTIFIER from dotted-decimal text."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return _tlv(0x06, bytes(out))
