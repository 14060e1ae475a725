"""Where a stream source may point: only at the camera networks an operator listed
(CLASSPULSE_SOURCE_ALLOWED_NETWORKS, none by default: no stream at all until camera networks are listed), with the
schemes they allow; the rules are classpulse_web.destinations', checked when the source starts and again at every
reconnection.

FFmpeg then connects only to addresses that were checked, never to a name it resolves itself (a name may answer an
allowed address to the check and 127.0.0.1 or 169.254.169.254 to FFmpeg): it reaches every stream through the egress
proxy (egress.py), which checks each connection the same way and makes it to a checked address (of a host with several,
the first to take a TCP connection: classpulse_web.happy_eyeballs). That covers what a stream leads FFmpeg to: an HTTP
redirect, an HLS playlist's segments on other hosts, an RTSP camera's redirect (rtsp_relay.py: RTP interleaved on the
one TCP connection, never UDP to ports a camera names).
"""

from __future__ import annotations

from collections.abc import Iterable

from classpulse_ingest.diagnose import SourceError
from classpulse_web.destinations import DestinationRefused, Network, check_destination

NETWORKS_SETTING = "CLASSPULSE_SOURCE_ALLOWED_NETWORKS"
DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322}
"""FFmpeg's port for a stream URL that names none: where ingest connects to check it or pick its address."""


def check_stream_destination(url: str, allowed_networks: Iterable[Network], allowed_schemes: Iterable[str]) -> list[str]:
    """The addresses the URL's host resolves to, to connect to instead of the name; SourceError unless the URL's
    scheme is allowed and every one of them is."""
    try:
        return check_destination(url, allowed_networks, allowed_schemes, "stream", NETWORKS_SETTING)
    except DestinationRefused as refusal:
        raise SourceError(refusal.cause, str(refusal)) from None
