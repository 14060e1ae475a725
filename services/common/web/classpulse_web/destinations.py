"""Where a service may connect when a caller gives it a URL: only into the networks an operator listed, with the
schemes they allow. Ingest checks a camera's stream URL with it, the API a webhook's URL, each against its own
setting; the rules are the same.

A URL given to a service (by an admin, a teacher) makes it connect wherever it says; without a bound that is a way
into the cluster's network (server-side request forgery): the cloud metadata service, the pods' own loopback, any
internal host. So a URL's host must resolve only to addresses inside the allowed networks (none by default), checked
before each connection (a name may resolve elsewhere later); a client that can, connects to the very addresses checked
(`allowed_addresses`), not to the name resolved once more; of several, to the first that takes a connection
(happy_eyeballs.py). Loopback, link-local (169.254.169.254 is the metadata service of most clouds), the other clouds'
metadata addresses, multicast and unspecified addresses are refused even inside a broad entry such as 0.0.0.0/0: only
an entry within their own range lets them in (127.0.0.0/8 for a relay on the same host). A refusal names neither the
addresses nor anything the host said: it must not map the internal network for its caller.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

GUARDED_RANGES = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this host"
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, with the metadata service of AWS, GCP, Azure, OpenStack at 169.254.169.254
        "100.100.100.200/32",  # Alibaba Cloud's metadata service
        "168.63.129.16/32",  # Azure's host services (WireServer)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "::1/128",
        "fe80::/10",
        "fd00:ec2::254/128",  # AWS's metadata service over IPv6
        "ff00::/8",
    )
)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches through a transition form: mapped (::ffff:a.b.c.d), translated
    (::ffff:0:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d), 6to4 (2002:aabb:ccdd::)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in (_NAT64, _IPV4_COMPATIBLE, _IPV4_TRANSLATED)) and int(address) & 0xFFFFFFFF > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_allowed(address: Address, allowed: Iterable[Network]) -> bool:
    """Whether `address` is in an allowed network, and, if it is in a guarded range, in an entry within that range.
    An IPv6 address that carries an IPv4 one (`embedded_ipv4`) is judged as that IPv4 address too: 64:ff9b::a9fe:a9fe
    reaches 169.254.169.254 through a NAT64 gateway."""
    allowed = list(allowed)
    if isinstance(address, ipaddress.IPv6Address) and (carried := embedded_ipv4(address)) is not None:
        if address.ipv4_mapped is not None:
            address = carried  # ::ffff:169.254.169.254 is 169.254.169.254
        elif not address_allowed(carried, allowed):
            return False
    containing = [network for network in allowed if network.version == address.version and address in network]
    guarded = [rng for rng in GUARDED_RANGES if rng.version == address.version and address in rng]
    return bool(containing) and all(any(_subnet_of(network, rng) for network in containing) for rng in guarded)


def _subnet_of(network: Network, other: Network) -> bool:
    """`network.subnet_of(other)` for two networks of one IP version (False across versions)."""
    if isinstance(network, ipaddress.IPv4Network) and isinstance(other, ipaddress.IPv4Network):
        return network.subnet_of(other)
    if isinstance(network, ipaddress.IPv6Network) and isinstance(other, ipaddress.IPv6Network):
        return network.subnet_of(other)
    return False


class DestinationRefused(ValueError):
    """`cause`: bad_location, unresolved or not_allowed; the message says why, with the URL's credentials hidden."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


def check_destination(url: str, allowed_networks: Iterable[Network], allowed_schemes: Iterable[str], what: str, setting: str) -> list[str]:
    """The addresses the URL's host resolves to (`allowed_addresses`); DestinationRefused unless the URL's scheme is
    allowed and every one of them is. `what` names the URL in messages ("stream", "webhook"), `setting` the variable
    that lists the networks."""
    host, port = checked_location(url, allowed_schemes, what)
    return allowed_addresses(host, port, allowed_networks, what, setting, shown=redact(url))


def checked_location(url: str, allowed_schemes: Iterable[str], what: str) -> tuple[str, int | None]:
    """The URL's host and port; DestinationRefused if it is malformed, names no host or a scheme not allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise DestinationRefused("bad_location", f"the {what} URL is malformed") from None
    schemes = sorted(allowed_schemes)
    if parts.scheme not in schemes:
        raise DestinationRefused("bad_location", f"unsupported URL scheme in {redact(url)!r}: use {', '.join(schemes)}")
    if not parts.hostname:
        raise DestinationRefused("bad_location", f"{redact(url)!r} names no host")
    return parts.hostname, port


def allowed_addresses(host: str, port: int | None, allowed_networks: Iterable[Network], what: str, setting: str, shown: str) -> list[str]:
    """The addresses `host` resolves to, in the resolver's order, if every one is allowed; DestinationRefused, naming
    the destination as `shown`, if not. A connection that must stay within the networks goes to one of these, not to
    the name: resolved again, a name may answer elsewhere (DNS rebinding: a public address to the check, 127.0.0.1 to
    the connection)."""
    try:
        resolved = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise DestinationRefused("unresolved", f"the host of {shown} does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in resolved))
    networks = list(allowed_networks)
    # A scoped IPv6 address (fe80::1%eth0) is judged without its scope, and connected to with it.
    if not addresses or not networks or not all(address_allowed(ipaddress.ip_address(a.split("%")[0]), networks) for a in addresses):
        raise DestinationRefused("not_allowed", f"{shown} is outside the networks {what} URLs may reach ({setting})")
    return addresses


def redact(url: str) -> str:
    """The URL without its credentials: camera URLs carry them in the user part (rtsp://user:secret@host/...) or in
    the query (?user=admin&password=...); both are hidden, the query's names kept."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(malformed URL)"
    netloc = parts.netloc
    if "@" in netloc:
        host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname or ""
        netloc = f"***@{host}" + (f":{port}" if port else "")
    query = "&".join(f"{name.partition('=')[0]}=***" for name in parts.query.split("&")) if parts.query else ""
    return parts._replace(netloc=netloc, query=query, fragment="").geturl()
