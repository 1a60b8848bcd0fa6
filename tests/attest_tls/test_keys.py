"""Root secret derivations, sealing, the platform CA and the inbound policy."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from confide.config import Limits
from confide.keys import (
    DEFAULT_INBOUND_POLICY,
    DERIVATION_LABELS,
    KeysError,
    PeerNotAllowedError,
    PlatformCA,
    RootSecret,
    SealingError,
    SimSealer,
    UnsafeSimSealerWarning,
    load_root_secret,
    service_dns_name,
    services_of,
    store_root_secret,
)

from ._fakes import NOW


def _sealer(path: Path) -> SimSealer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSimSealerWarning)
        return SimSealer(path)


def test_derivations_are_deterministic_and_separated_by_label() -> None:
    secret = RootSecret(bytes(range(32)))
    outputs = {label: secret.derive(label, 32) for label in DERIVATION_LABELS}
    assert len(set(outputs.values())) == len(DERIVATION_LABELS)
    assert RootSecret(bytes(range(32))).derive("record-seal", 32) == outputs["record-seal"]
    assert RootSecret(bytes(32)).derive("record-seal", 32) != outputs["record-seal"]
    assert secret.derive("record-mac", 64)[:32] != outputs["record-seal"]


def test_rejects_unknown_derivation_label() -> None:
    with pytest.raises(KeysError) as e:
        RootSecret.generate().derive("anything-else", 32)
    assert e.value.reason == "unknown-label"


def test_root_secret_is_never_printed() -> None:
    secret = RootSecret(b"\x41" * 32)
    assert "AAAA" not in repr(secret) and "41" not in repr(secret)


def test_sim_sealer_emits_unsafe_warning(tmp_path: Path) -> None:
    with pytest.warns(UnsafeSimSealerWarning, match="NO protection"):
        SimSealer(tmp_path / "sim.key")


def test_root_secret_round_trips_sealed(tmp_path: Path) -> None:
    sealer = _sealer(tmp_path / "sim.key")
    secret = RootSecret.generate()
    store_root_secret(tmp_path / "root.sealed", secret, sealer)
    raw = (tmp_path / "root.sealed").read_bytes()
    assert secret.expose_secret_bytes() not in raw
    assert load_root_secret(tmp_path / "root.sealed", _sealer(tmp_path / "sim.key")) == secret


def test_rejects_tampered_sealed_root_secret(tmp_path: Path) -> None:
    sealer = _sealer(tmp_path / "sim.key")
    store_root_secret(tmp_path / "root.sealed", RootSecret.generate(), sealer)
    blob = bytearray((tmp_path / "root.sealed").read_bytes())
    blob[-1] ^= 1
    (tmp_path / "root.sealed").write_bytes(bytes(blob))
    with pytest.raises(SealingError) as e:
        load_root_secret(tmp_path / "root.sealed", sealer)
    assert e.value.reason == "unseal-failed"


def test_rejects_unseal_with_other_sealing_key_or_context(tmp_path: Path) -> None:
    sealed = _sealer(tmp_path / "a.key").seal(b"secret", b"ctx")
    with pytest.raises(SealingError):
        _sealer(tmp_path / "b.key").unseal(sealed, b"ctx")
    with pytest.raises(SealingError):
        _sealer(tmp_path / "a.key").unseal(sealed, b"other")


def test_platform_ca_is_identical_on_every_node_with_the_secret() -> None:
    secret_bytes = bytes(range(32))
    a = PlatformCA.from_root_secret(RootSecret(secret_bytes))
    b = PlatformCA.from_root_secret(RootSecret(secret_bytes))
    assert a.certificate_der == b.certificate_der
    assert PlatformCA.from_root_secret(RootSecret.generate()).certificate_der != a.certificate_der
    constraints = a.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca


def test_node_certificate_names_its_services() -> None:
    ca = PlatformCA.from_root_secret(RootSecret.generate())
    key = ec.generate_private_key(ec.SECP256R1())
    der = ca.issue_node_certificate(
        key.public_key(), node_id="node-1", services=["scheduler", "management"], now=NOW
    )
    assert services_of(der) == {"scheduler", "management"}
    assert ca.verify_node_certificate(der, NOW) == {"scheduler", "management"}
    cert = x509.load_der_x509_certificate(der)
    dns = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert service_dns_name("scheduler") in dns.get_values_for_type(x509.DNSName)
    assert cert.not_valid_after_utc - NOW == dt.timedelta(hours=24)


def test_rejects_node_certificate_from_another_platform() -> None:
    ca = PlatformCA.from_root_secret(RootSecret.generate())
    rogue = PlatformCA.from_root_secret(RootSecret.generate())
    key = ec.generate_private_key(ec.SECP256R1())
    der = rogue.issue_node_certificate(
        key.public_key(), node_id="n", services=["frontend"], now=NOW
    )
    with pytest.raises(KeysError) as e:
        ca.verify_node_certificate(der, NOW)
    assert e.value.reason == "certificate-untrusted"


def test_rejects_expired_node_certificate() -> None:
    ca = PlatformCA.from_root_secret(RootSecret.generate())
    key = ec.generate_private_key(ec.SECP256R1())
    der = ca.issue_node_certificate(key.public_key(), node_id="n", services=["frontend"], now=NOW)
    with pytest.raises(KeysError) as e:
        ca.verify_node_certificate(der, NOW + dt.timedelta(hours=25))
    assert e.value.reason == "certificate-expired"


@pytest.mark.parametrize("bad", ["", "Frontend", "front end", "x" * 65, "../etc"])
def test_rejects_bad_service_names(bad: str) -> None:
    ca = PlatformCA.from_root_secret(RootSecret.generate())
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(KeysError):
        ca.issue_node_certificate(key.public_key(), node_id="n", services=[bad], now=NOW)


def test_service_count_cap_plus_one_refused() -> None:
    ca = PlatformCA.from_root_secret(RootSecret.generate())
    key = ec.generate_private_key(ec.SECP256R1())
    limits = Limits(max_enrolment_services=2)
    ca.issue_node_certificate(
        key.public_key(), node_id="n", services=["a", "b"], now=NOW, limits=limits
    )
    with pytest.raises(KeysError) as e:
        ca.issue_node_certificate(
            key.public_key(), node_id="n", services=["a", "b", "c"], now=NOW, limits=limits
        )
    assert e.value.reason == "too-many-services"


def test_service_name_cap_plus_one_refused() -> None:
    ca = PlatformCA.from_root_secret(RootSecret.generate())
    key = ec.generate_private_key(ec.SECP256R1())
    limits = Limits(max_service_name_chars=8)
    ca.issue_node_certificate(
        key.public_key(), node_id="n", services=["a" * 8], now=NOW, limits=limits
    )
    with pytest.raises(KeysError) as e:
        ca.issue_node_certificate(
            key.public_key(), node_id="n", services=["a" * 9], now=NOW, limits=limits
        )
    assert e.value.reason == "bad-service-name"


@pytest.mark.parametrize(
    ("server", "caller"),
    [
        ("authentication", "frontend"),
        ("management", "frontend"),
        ("access_control", "frontend"),
        ("access_control", "management"),
        ("storage", "management"),
        ("storage", "scheduler"),
        ("scheduler", "execution"),
    ],
)
def test_inbound_policy_allows_teaclave_table(server: str, caller: str) -> None:
    assert DEFAULT_INBOUND_POLICY.check(server, {caller}) == caller


@pytest.mark.parametrize(
    ("server", "caller"),
    [
        ("storage", "execution"),
        ("storage", "frontend"),
        ("management", "execution"),
        ("authentication", "management"),
        ("frontend", "execution"),
        ("scheduler", "frontend"),
    ],
)
def test_inbound_policy_refuses_other_callers(server: str, caller: str) -> None:
    with pytest.raises(PeerNotAllowedError) as e:
        DEFAULT_INBOUND_POLICY.check(server, {caller})
    assert e.value.reason == "peer-not-allowed"


def test_inbound_policy_refuses_caller_without_services() -> None:
    with pytest.raises(PeerNotAllowedError):
        DEFAULT_INBOUND_POLICY.check("storage", frozenset())
