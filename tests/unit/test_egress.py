"""The egress rule over addresses: what a configured URL may reach (core/egress.py)."""

from __future__ import annotations

import pytest

from core.egress import (
    EgressAllow,
    EgressRefused,
    HostUnresolved,
    Resolver,
    address_class,
    check_connect,
    check_url,
    resolve_checked,
)
from core.errors import ConfigError

NOTHING = EgressAllow()


def fake_dns(table: dict[str, list[str]]) -> Resolver:
    """A resolver answering from `table` (unknown names do not resolve)."""

    def resolve(host: str, port: int | None) -> list[str]:
        return list(table.get(host, []))

    return resolve


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("::127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified (it reaches this machine)"),
        ("::", "unspecified (it reaches this machine)"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("224.0.0.1", "multicast"),
        ("192.0.2.1", "reserved (not a public address)"),
        ("240.0.0.1", "reserved (not a public address)"),
    ],
)
def test_refused_address_classes(address: str, kind: str) -> None:
    assert address_class(address) == kind


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert address_class(address) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://2130706433/",  # decimal
        "http://0x7f.0.0.1/",  # hexadecimal
        "http://0177.0.0.1/",  # octal
        "http://017700000001/",
        "http://127.1/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://[0:0:0:0:0:ffff:7f00:1]/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:9000/",
        "http://10.0.0.5/hook",
        "https://[fe80::1%25eth0]/",
        "sc://127.0.0.1:15002",
    ],
)
def test_tricks_that_reach_this_machine_or_the_inside_are_refused(url: str) -> None:
    scheme = url.split(":", 1)[0]
    with pytest.raises(EgressRefused) as info:
        check_url(url, NOTHING, field="quality.webhook_url", schemes=(scheme,))
    error = info.value
    assert isinstance(error, ConfigError) and error.http_status == 422 and error.field == "quality.webhook_url"
    assert "AUTOLOADER_EGRESS_ALLOW" in error.action
    assert "address" in error.message


def test_the_error_names_the_host_and_the_class_but_not_the_url_path() -> None:
    with pytest.raises(EgressRefused) as info:
        check_url("http://2130706433/services/T0/B0/s3cr3t-path", NOTHING, field="quality.webhook_url")
    assert "'2130706433' resolves to 127.0.0.1, which is a loopback address" in info.value.message
    assert "'2130706433'" in info.value.action
    assert "s3cr3t" not in info.value.message + info.value.action


def test_names_resolving_to_an_inside_address_are_refused() -> None:
    dns = fake_dns({"evil.example": ["93.184.216.34", "127.0.0.1"], "meta.example": ["169.254.169.254"]})
    with pytest.raises(EgressRefused, match=r"resolves to 127\.0\.0\.1, which is a loopback"):
        check_url("https://evil.example/hook", NOTHING, resolve=dns)
    with pytest.raises(EgressRefused, match="cloud metadata"):
        check_url("http://meta.example/", NOTHING, resolve=dns)
    check_url("https://good.example/", NOTHING, resolve=fake_dns({"good.example": ["93.184.216.34"]}))


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/", "data:text/plain,x", "example.com"]
)
def test_webhooks_are_http_or_https_only(url: str) -> None:
    with pytest.raises(EgressRefused, match="only http:// or https://"):
        check_url(url, NOTHING, field="quality.webhook_url")


def test_a_url_without_a_host_is_refused() -> None:
    with pytest.raises(EgressRefused, match="has no host"):
        check_url("http:///x", NOTHING)


def test_the_allow_list_takes_hosts_addresses_and_networks() -> None:
    allow = EgressAllow.parse(["127.0.0.1", " minio.internal ", "10.0.0.0/8", "[fd00::1]", ""])
    assert allow.hosts == frozenset({"minio.internal"})
    check_url("http://127.0.0.1:8333/", allow)
    check_url("http://2130706433/", allow)  # the same address, written in decimal
    check_url("http://[::ffff:127.0.0.1]/", allow)
    check_url("http://10.20.30.40/", allow)
    check_url("http://[fd00::1]/", allow)
    check_url("http://MINIO.internal./", allow, resolve=fake_dns({"MINIO.internal.": ["192.168.5.5"]}))
    with pytest.raises(EgressRefused):
        check_url("http://127.0.0.2/", allow)  # only 127.0.0.1 was listed
    with pytest.raises(EgressRefused):
        check_url("http://192.168.1.1/", allow)


@pytest.mark.parametrize("entry", ["http://10.0.0.1", "host/with/slash", "user@host", "a b"])
def test_a_malformed_allow_entry_is_a_config_error(entry: str) -> None:
    with pytest.raises(ConfigError) as info:
        EgressAllow.parse([entry])
    assert info.value.field == "AUTOLOADER_EGRESS_ALLOW"


def test_an_unresolvable_name_passes_when_saved_but_is_never_connected_to() -> None:
    dns = fake_dns({})
    check_url("https://not-yet.example/", NOTHING, resolve=dns)
    with pytest.raises(HostUnresolved) as info:
        check_connect("https://not-yet.example/", NOTHING, field="source.endpoint_url", resolve=dns)
    assert info.value.transient and "not-yet.example" in info.value.message


def test_dns_rebinding_is_caught_when_connecting() -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    def rebinding(host: str, port: int | None) -> list[str]:
        return next(answers)

    check_url("http://rebind.example/", NOTHING, resolve=rebinding)  # saved: public
    with pytest.raises(EgressRefused, match=r"resolves to 127\.0\.0\.1"):
        resolve_checked("rebind.example", 80, NOTHING, resolve=rebinding)  # connecting: loopback now


def test_resolve_checked_returns_the_addresses_to_connect_to() -> None:
    dns = fake_dns({"two.example": ["93.184.216.34", "2606:2800:220:1::1"]})
    assert resolve_checked("two.example", 443, NOTHING, resolve=dns) == ["93.184.216.34", "2606:2800:220:1::1"]
    assert resolve_checked("127.0.0.1", 80, EgressAllow.parse(["127.0.0.1"])) == ["127.0.0.1"]
