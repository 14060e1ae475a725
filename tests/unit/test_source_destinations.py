"""Which addresses a stream source may reach: the allowed networks, never loopback, link-local or a cloud's metadata
service unless an entry within their own range lists them."""

from __future__ import annotations

import ipaddress

import pytest

from classpulse_web.destinations import address_allowed

pytestmark = pytest.mark.unit


def allowed(address: str, *networks: str) -> bool:
    return address_allowed(ipaddress.ip_address(address), [ipaddress.ip_network(n) for n in networks])


def test_only_listed_networks_are_reached():
    assert allowed("10.20.3.4", "10.20.0.0/16")
    assert not allowed("10.21.3.4", "10.20.0.0/16")
    assert not allowed("10.20.3.4")  # nothing listed: nothing reached
    assert not allowed("2001:db8::1", "10.0.0.0/8")


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "::ffff:169.254.169.254", "127.0.0.1", "::1", "0.0.0.0", "100.100.100.200", "168.63.129.16",
     "fd00:ec2::254", "fe80::1", "224.0.0.1"],
)
def test_guarded_addresses_need_an_entry_of_their_own(address):
    assert not allowed(address, "0.0.0.0/0", "::/0")
    own = ipaddress.ip_address(address)
    own = own.ipv4_mapped or own if isinstance(own, ipaddress.IPv6Address) else own
    assert allowed(address, f"{own}/{own.max_prefixlen}")


def test_a_public_address_passes_a_broad_entry():
    assert allowed("192.0.2.10", "0.0.0.0/0")
    assert allowed("100.64.1.1", "100.64.0.0/10")  # carrier-grade NAT is an ordinary network here


@pytest.mark.parametrize("address", ["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::a9fe:a9fe", "::ffff:0:a9fe:a9fe", "64:ff9b::7f00:1"])
def test_an_ipv6_address_that_carries_a_guarded_ipv4_one_is_guarded_as_it(address):
    """NAT64, 6to4, IPv4-compatible and translated forms reach 169.254.169.254 (or loopback) through a gateway or a
    stack that speaks them: with ::/0 allowed they passed, as the metadata service's IPv6 disguise."""
    assert not allowed(address, "0.0.0.0/0", "::/0")
    assert allowed("64:ff9b::c000:20a", "0.0.0.0/0", "::/0")  # 192.0.2.10 through NAT64: a public address
