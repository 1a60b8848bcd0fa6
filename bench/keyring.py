"""Cost of reading keys through the live keyring, with its baseline in the same run.

Run: ``PYTHONPATH=src python bench/keyring.py [--n N] [--runs R]``.

Every row seal/open and token issue now asks the live keyring (``confide.keys.LiveKeys``)
for the active key or a key by version. Baseline: the same classes over one fixed key
(``FixedKey``: a plain bytes key, as before rotation existed). Measured:
* seal + open of a 200-byte record body (``RecordSealer``);
* open of a row in the format before rotation (``0x01`` header) vs the new one;
* issue + verify of a session token (``TokenSigner``, the verified-token cache bypassed).
Baseline and keyring runs alternate; figures are medians of R runs of N operations.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import cbor2
from _speed import speed_line
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from confide.crypto.records import FixedKey, RecordSealer
from confide.keys import KeyRing, LiveKeys, RootSecret
from confide.services.authentication import TokenSigner

ROOT = RootSecret(b"b" * 32)
BODY = b"x" * 200
COLS = ["tasks", "task-1", 1, 0]


def _timed(fn: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6  # µs per operation


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ring = KeyRing(ROOT).rotated(["record", "token"], now=1).rotated(["record"], now=2)
    live = LiveKeys(ring)
    record_key = ring.key("record", 3)
    token_key = ring.key("token", 2)
    assert record_key is not None and token_key is not None
    fixed_sealer, live_sealer = RecordSealer(FixedKey(record_key)), RecordSealer(
        live.view("record"))
    legacy_key = ring.key("record", 1)
    assert legacy_key is not None
    v1_row = b"\x01" + b"n" * 12 + AESGCM(legacy_key).encrypt(
        b"n" * 12, BODY, cbor2.dumps(["tasks", "task-1", COLS]))
    v2_row = live_sealer.seal("tasks", "task-1", COLS, BODY)
    fixed_signer = TokenSigner(FixedKey(token_key), 3600)
    live_signer = TokenSigner(live.view("token"), 3600)

    def seal_open(sealer: RecordSealer) -> Callable[[], None]:
        return lambda: sealer.open("tasks", "task-1", COLS,
                                   sealer.seal("tasks", "task-1", COLS, BODY))

    def token(signer: TokenSigner) -> Callable[[], None]:
        def go() -> None:
            signer._decode(signer.issue("u", "r", 0, now=1))
        return go

    cases: list[tuple[str, Callable[[], None], Callable[[], None], int]] = [
        ("record seal + open", seal_open(fixed_sealer), seal_open(live_sealer), args.n),
        ("record open: 0x01 row vs 0x02 row",
         lambda: live_sealer.open("tasks", "task-1", COLS, v1_row),
         lambda: live_sealer.open("tasks", "task-1", COLS, v2_row), args.n),
        ("token issue + verify", token(fixed_signer), token(live_signer), args.n // 10),
    ]
    print(speed_line())
    print(f"{'operation':38} {'baseline µs':>12} {'keyring µs':>12} {'ratio':>7}")
    for name, base, ringed, n in cases:
        a, b = [], []
        for _ in range(args.runs):
            a.append(_timed(base, n))
            b.append(_timed(ringed, n))
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{name:38} {ma:12.2f} {mb:12.2f} {mb / ma:7.2f}")


if __name__ == "__main__":
    main()
