"""Where outbound connections may go: an S3 endpoint, a webhook, a Spark Connect cluster.

A URL typed into a configuration must not turn the server into a proxy towards what only the server can reach:
its own loopback services, the private network, link-local addresses and the cloud metadata endpoint (which
hands out the machine's credentials). Such addresses are refused unless the operator lists the host or a CIDR
in `AUTOLOADER_EGRESS_ALLOW`.

Two moments, one rule:

- saving or testing a configuration: `check_url` refuses a URL whose host is, or resolves to, a refused
  address. A name that does not resolve passes (nothing can be reached through it now, and the connection
  checks again);
- connecting: `resolve_checked` resolves again and returns the addresses to connect to, so a name that
  resolved to a public address when saved and to 127.0.0.1 now (DNS rebinding) is refused at that moment.
  `open_url` connects a webhook to exactly the addresses it checked and follows no redirect.

Numeric tricks (`http://2130706433/`, `http://0x7f.0.0.1/`, `[::ffff:127.0.0.1]`) are resolved by the same
system resolver the clients use, so they are judged by the address they reach.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from core.errors import ConfigError, TransientError

SETTING = "AUTOLOADER_EGRESS_ALLOW"
WEB_SCHEMES = ("http", "https")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int | None], list[str]]

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, ...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class EgressRefused(ConfigError):
    code = "egress_refused"


class HostUnresolved(TransientError):
    """A host that does not resolve at connection time: never connected to (its next answer could be anything)."""

    code = "host_unresolved"
    http_status = 422


@dataclass(frozen=True, slots=True)
class EgressAllow:
    """The operator's exceptions: host names (exact, case-insensitive) and networks that may be reached although
    their addresses are loopback, private or link-local."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> EgressAllow:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = _normal_host(entry)
            if not name or any(c in name for c in "/:@ ") or "://" in entry:
                raise ConfigError(
                    f"'{entry}' in {SETTING} is neither a host name, an IP address nor a CIDR.",
                    f"List host names (s3.internal), addresses (10.0.0.5) or networks (10.0.0.0/8) in {SETTING}, "
                    "separated by commas.",
                    field=SETTING,
                )
            hosts.add(name)
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return _normal_host(host) in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address, *([e] if (e := _embedded_ipv4(address)) is not None else [])]
        return any(c in n for c in candidates for n in self.networks if c.version == n.version)


def address_class(address: str | IPAddress) -> str | None:
    """Why an address may not be reached without an allow entry ("loopback", "private", ...), None if public."""
    ip = address if not isinstance(address, str) else ipaddress.ip_address(address.split("%", 1)[0])
    embedded = _embedded_ipv4(ip)
    if embedded is not None and (found := address_class(embedded)) is not None:
        return found
    if ip in _METADATA:
        return "cloud metadata"
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified (it reaches this machine)"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.version == 4 and ip in _SHARED:
        return "shared (carrier-grade NAT)"
    if any(ip.version == n.version and ip in n for n in _PRIVATE):
        return "private"
    if ip.version == 6 and ip in _IPV4_COMPATIBLE:
        return "reserved (IPv4-compatible IPv6)"
    if not ip.is_global:
        return "reserved (not a public address)"
    return None


def system_resolver(host: str, port: int | None) -> list[str]:
    """Every address the system resolver gives for `host`, in its order; [] when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    found: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def check_url(
    url: str,
    allow: EgressAllow,
    *,
    field: str | None = None,
    schemes: tuple[str, ...] = WEB_SCHEMES,
    resolve: Resolver = system_resolver,
) -> None:
    """Refuse a URL with another scheme, without a host, or whose host is or resolves to a refused address.

    The check when a configuration is saved or tested; a name that does not resolve passes (see the module)."""
    host, port = split_url(url, field=field, schemes=schemes)
    _judge(host, port, allow, field, resolve, strict=False)


def resolve_checked(
    host: str, port: int | None, allow: EgressAllow, *, field: str | None = None, resolve: Resolver = system_resolver
) -> list[str]:
    """The addresses to connect to, resolved now: refused ones raise, and so does a host that does not resolve."""
    return _judge(host, port, allow, field, resolve, strict=True)


def check_connect(
    url: str,
    allow: EgressAllow,
    *,
    field: str | None = None,
    schemes: tuple[str, ...] = WEB_SCHEMES,
    resolve: Resolver = system_resolver,
) -> list[str]:
    """`resolve_checked` for the host of a URL: the check right before a client connects."""
    host, port = split_url(url, field=field, schemes=schemes)
    return resolve_checked(host, port, allow, field=field, resolve=resolve)


def split_url(url: str, *, field: str | None, schemes: tuple[str, ...]) -> tuple[str, int | None]:
    """The host and port of a URL whose scheme is one of `schemes`. Errors never quote the URL: a webhook's path
    or a user:password part is often a secret."""
    shown = " or ".join(f"{s}://" for s in schemes)
    what = f"The URL in {field}" if field else "The URL"
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        raise EgressRefused(
            f"{what} is not a valid URL.", f"Use a {shown} URL with a host name.", field=field
        ) from None
    if parts.scheme.lower() not in schemes:
        raise EgressRefused(
            f"{what} uses '{parts.scheme or 'no scheme'}'; only {shown} is accepted here.",
            f"Use a {shown} URL.",
            field=field,
        )
    if not host:
        raise EgressRefused(f"{what} has no host.", f"Use a {shown} URL with a host name.", field=field)
    return host, port


def _judge(
    host: str, port: int | None, allow: EgressAllow, field: str | None, resolve: Resolver, *, strict: bool
) -> list[str]:
    literal = _ip_literal(host)
    addresses = [str(literal)] if literal is not None else resolve(host, port)
    name = _normal_host(host)
    if (name == "localhost" or name.endswith(".localhost")) and "127.0.0.1" not in addresses:
        # RFC 6761: these names are this machine whatever a resolver says (some resolve them without DNS).
        addresses = [*addresses, "127.0.0.1"]
    if not addresses:
        if strict:
            raise HostUnresolved(
                f"The host '{host}' could not be resolved, so nothing was sent to it.",
                "Check the host name and this machine's DNS; a run retries later.",
                field=field,
            )
        return []
    if allow.allows_host(host):
        return addresses
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        kind = address_class(ip)
        if kind is not None and not allow.allows_address(ip):
            via = "" if _same_address(host, ip) else f" resolves to {ip}, which"
            article = "an" if kind[0] in "aeiou" else "a"
            raise EgressRefused(
                f"The host '{host}'{via} is {article} {kind} address: the server does not connect there.",
                f"Use a public host, or, if this host is meant to be reachable, add '{host}' or its network to "
                f"{SETTING} (comma-separated hosts or CIDRs) and restart.",
                field=field,
            )
    return addresses


def _ip_literal(host: str) -> IPAddress | None:
    """The address a host written as a standard IP literal stands for (a zone such as %eth0 dropped)."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _same_address(host: str, ip: IPAddress) -> bool:
    return _ip_literal(host) == ip


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo, IPv4-compatible), if any."""
    if ip.version != 6:
        return None
    assert isinstance(ip, ipaddress.IPv6Address)
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


# --- webhooks -----------------------------------------------------------------------------------------------------


def open_url(request: urllib.request.Request, allow: EgressAllow, *, timeout: float, field: str) -> Any:
    """Send an http(s) request through an opener that checks the URL and connects (when no proxy is configured) to
    exactly the addresses it checked. A redirect is not followed (urllib.error.HTTPError with its status): urllib
    turns a redirected POST into a GET without its body, so a followed webhook redirect lost the alert while the
    delivery read "ok" (an outside attack). Other schemes (file://, ftp://, data:) have no handler at all."""
    check_url(request.full_url, allow, field=field)
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        _CheckedHTTPHandler(allow, field),
        _CheckedHTTPSHandler(allow, field),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener.open(request, timeout=timeout)


def _pinned_connect(allow: EgressAllow, field: str) -> Callable[..., socket.socket]:
    """A replacement for `socket.create_connection` that connects only to addresses `resolve_checked` returned."""

    def connect(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT, source: Any = None) -> Any:  # type: ignore[attr-defined]
        host, port = address
        error: OSError | None = None
        for ip in resolve_checked(host, port, allow, field=field):
            try:
                return socket.create_connection((ip, port), timeout, source)
            except OSError as exc:
                error = exc
        assert error is not None
        raise error

    return connect


def _proxied(request: urllib.request.Request) -> bool:
    return request.has_proxy() or getattr(request, "_tunnel_host", None) is not None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, egress: EgressAllow, field: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._create_connection = _pinned_connect(egress, field)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, egress: EgressAllow, field: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._create_connection = _pinned_connect(egress, field)


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allow: EgressAllow, field: str):
        super().__init__()
        self.allow, self.field = allow, field

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        if _proxied(req):  # the proxy resolves the target; the URL was checked before the request was sent
            return self.do_open(http.client.HTTPConnection, req)
        return self.do_open(functools.partial(_PinnedHTTPConnection, egress=self.allow, field=self.field), req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allow: EgressAllow, field: str):
        super().__init__()
        self.allow, self.field = allow, field

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        context = getattr(self, "_context", None)
        if _proxied(req):
            return self.do_open(http.client.HTTPSConnection, req, context=context)
        pinned = functools.partial(_PinnedHTTPSConnection, egress=self.allow, field=self.field)
        return self.do_open(pinned, req, context=context)
