"""URL policy, URL parsing and redaction of the file agent (pure, no I/O)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import confide.execution.file_agent as fa
from confide.execution.file_agent import (
    FileAgentError,
    InvalidUrl,
    PolicyViolation,
    UrlPolicy,
    address_class,
    redact_url,
)
from confide.execution.file_agent._policy import check_url_text, parse_http_url


def test_public_surface_is_pinned() -> None:
    assert fa.__all__ == sorted(fa.__all__)
    assert fa.__all__ == [
        "AlreadyExists",
        "BufferedDestination",
        "FileAgent",
        "FileAgentError",
        "InvalidUrl",
        "PolicyViolation",
        "Resolver",
        "Timeout",
        "TooLarge",
        "TransferFailed",
        "UrlPolicy",
        "address_class",
        "redact_url",
        "system_resolver",
    ]


def test_every_error_maps_to_teaclave_transfer_reason() -> None:
    for name in ("AlreadyExists", "InvalidUrl", "PolicyViolation", "Timeout", "TooLarge"):
        cls = getattr(fa, name)
        assert issubclass(cls, FileAgentError)
        assert cls("http://h/x", "r").task_reason == "ocall error = 1"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # v4-mapped
        ("::127.0.0.1", "loopback"),  # IPv4-compatible
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("::ffff:192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("::ffff:169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "non-global"),  # carrier-grade NAT
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_classes(address: str, kind: str | None) -> None:
    assert address_class(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "::ffff:127.0.0.1", "10.0.0.1", "169.254.169.254", "fe80::1", "0.0.0.0"],
)
def test_rejects_non_global_addresses_by_default(address: str) -> None:
    policy = UrlPolicy()
    with pytest.raises(PolicyViolation, match=r"address .* is .* and not allowed"):
        policy.check_address("http://h/", ipaddress.ip_address(address), 80)


def test_allow_loopback_admits_only_loopback_and_only_listed_ports() -> None:
    policy = UrlPolicy(allow_loopback=True, loopback_ports=frozenset({8080}))
    policy.check_address("http://h/", ipaddress.ip_address("127.0.0.1"), 8080)
    policy.check_address("http://h/", ipaddress.ip_address("::ffff:127.0.0.1"), 8080)
    with pytest.raises(PolicyViolation, match=r"loopback port 22 is not allowed"):
        policy.check_address("http://h/", ipaddress.ip_address("127.0.0.1"), 22)
    with pytest.raises(PolicyViolation, match=r"10.0.0.1 is private and not allowed"):
        policy.check_address("http://h/", ipaddress.ip_address("10.0.0.1"), 8080)


def test_allow_private_never_admits_link_local_metadata() -> None:
    policy = UrlPolicy(allow_private=True)
    policy.check_address("http://h/", ipaddress.ip_address("10.0.0.1"), 80)
    with pytest.raises(PolicyViolation, match=r"169.254.169.254 is link-local"):
        policy.check_address("http://h/", ipaddress.ip_address("169.254.169.254"), 80)
    with pytest.raises(PolicyViolation, match=r"is loopback and not allowed"):
        policy.check_address("http://h/", ipaddress.ip_address("127.0.0.1"), 80)


def test_host_patterns_exact_and_suffix() -> None:
    policy = UrlPolicy(hosts=("files.example.com", "*.bucket.example"))
    policy.check_host("u", "files.example.com")
    policy.check_host("u", "a.bucket.example")
    policy.check_host("u", "x.y.bucket.example")
    for host in ("bucket.example", "evilbucket.example", "files.example.com.evil", "example.com"):
        with pytest.raises(PolicyViolation, match=rf"host '{host}' is not in the allowed hosts"):
            policy.check_host("u", host)


def test_empty_host_list_refuses_every_host() -> None:
    with pytest.raises(PolicyViolation, match=r"not in the allowed hosts"):
        UrlPolicy(hosts=()).check_host("u", "example.com")


def test_policy_configuration_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown URL schemes"):
        UrlPolicy(schemes=frozenset({"ftp"}))
    with pytest.raises(ValueError, match=r"file scheme needs at least one file root"):
        UrlPolicy(schemes=frozenset({"file"}))
    with pytest.raises(ValueError, match=r"fusion scheme needs a fusion directory"):
        UrlPolicy(schemes=frozenset({"fusion"}))
    with pytest.raises(ValueError, match=r"absolute"):
        UrlPolicy(schemes=frozenset({"file"}), file_roots=("rel",))
    with pytest.raises(ValueError, match=r"invalid host pattern"):
        UrlPolicy(hosts=("*.10.0.0.1",))
    with pytest.raises(ValueError, match=r"invalid host pattern"):
        UrlPolicy(hosts=("a..b",))


def test_embedded_policy_allows_loopback_only_on_the_blob_store_port() -> None:
    policy = UrlPolicy.embedded(blob_store_port=4242, fusion_dir="/var/fusion")
    assert policy.schemes == frozenset({"http", "https", "data", "fusion"})
    policy.check_address("u", ipaddress.ip_address("127.0.0.1"), 4242)
    with pytest.raises(PolicyViolation, match=r"loopback port 4243 is not allowed"):
        policy.check_address("u", ipaddress.ip_address("127.0.0.1"), 4243)
    closed = UrlPolicy.embedded(blob_store_port=None)
    with pytest.raises(PolicyViolation, match=r"loopback and not allowed"):
        closed.check_address("u", ipaddress.ip_address("127.0.0.1"), 4242)


def test_rejects_overlong_url_at_cap_plus_one() -> None:
    url = "http://h/" + "a" * (100 - len("http://h/"))
    assert check_url_text(url, 100) == "http"
    with pytest.raises(PolicyViolation, match=r"URL has 101 chars, more than the cap of 100"):
        check_url_text(url + "a", 100)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty URL"),
        ("http://h/a b", "space, control, backslash or non-ASCII"),
        ("http://h/\x00", "space, control, backslash or non-ASCII"),
        ("http://h\\@evil/", "space, control, backslash or non-ASCII"),
        ("http://h/\u00e9", "space, control, backslash or non-ASCII"),
        ("//h/x", "no scheme"),
        ("1http://h/", "no scheme"),
    ],
)
def test_rejects_malformed_url_text(url: str, reason: str) -> None:
    with pytest.raises(InvalidUrl, match=reason):
        check_url_text(url, 1000)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://user:pw@h/", "user info"),
        ("http:///x", "no host"),
        ("http://h:0/", "port 0"),
        ("http://h:99999/", "malformed URL"),
        ("http://[::1]x:80/", "malformed authority"),
        ("http://[fe80::1%25eth0]/", "malformed authority|zone ids"),
        ("http://127.1/", "non-canonical numeric host"),
        ("http://0x7f000001/", "non-canonical numeric host"),
        ("http://2130706433/", "non-canonical numeric host"),
        ("http://017700000001/", "non-canonical numeric host"),
        ("http://a_b.example/", "malformed host name"),
        ("http://-a.example/", "malformed host name"),
    ],
)
def test_rejects_confusable_http_urls(url: str, reason: str) -> None:
    with pytest.raises(InvalidUrl, match=reason):
        parse_http_url(url)


def test_parses_and_normalises_http_urls() -> None:
    t = parse_http_url("HTTPS://Files.Example.COM./a/b.enc?X-Sig=1#frag")
    assert (t.scheme, t.host, t.port, t.target, t.ip) == (
        "https",
        "files.example.com",
        443,
        "/a/b.enc?X-Sig=1",
        None,
    )
    assert t.host_header == "files.example.com"
    v6 = parse_http_url("http://[::FFFF:7f00:1]:8080")
    assert v6.ip == ipaddress.ip_address("::ffff:127.0.0.1")
    assert v6.host_header == "[::ffff:7f00:1]:8080"
    assert v6.target == "/"


def test_redaction_hides_query_userinfo_and_data_payload() -> None:
    assert redact_url("https://u:p@s3.example/b/k?X-Amz-Signature=abc") == (
        "https://s3.example/b/k?<redacted>"
    )
    assert redact_url("data:text/plain;base64,c2VjcmV0") == "data:text/plain;base64,<8 chars>"
    assert len(redact_url("http://h/" + "a" * 5000)) < 300
    assert "\x00" not in redact_url("http://h/\x00?q")


def test_error_message_names_url_without_credentials() -> None:
    err = PolicyViolation("https://s3.example/k?X-Amz-Signature=SECRET", "nope")
    assert "SECRET" not in str(err)
    assert str(err) == "PolicyViolation: https://s3.example/k?<redacted>: nope"


# --- property tests: the parsers fail only with their own errors -----------------


URLISH = st.text(
    alphabet=st.sampled_from(list("htps:/[]@%.?#\\0123456789abcdefxX-_ :\u00e9\x00")), max_size=40
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(URLISH, st.text(max_size=40)).map(lambda t: "http://" + t))
def test_http_parser_raises_only_file_agent_errors(url: str) -> None:
    try:
        check_url_text(url, 1000)
        target = parse_http_url(url)
    except FileAgentError:
        return
    # what is accepted is plain: a normalised host and a port, nothing exotic
    assert target.scheme == "http"
    assert 0 < target.port < 65536
    assert "@" not in target.host and "%" not in target.host
    assert target.target.startswith("/")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_redaction_never_raises_and_hides_queries(text: str) -> None:
    shown = redact_url(text + "?secret=XYZZY")
    assert "XYZZY" not in shown
    assert len(shown) <= 260
