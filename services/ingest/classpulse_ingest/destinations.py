"""Where a stream source may point: only at the camera networks an operator listed
(CLASSPULSE_SOURCE_ALLOWED_NETWORKS, none by default: no stream at all until camera networks are listed), with the
schemes they allow; the rules are classpulse_web.destinations', checked when the source starts and again at every
reconnection.

What FFmpeg opens by itself after that (an HTTP redirect, an HLS playlist's segments) is beyond this check; the
Kubernetes egress policy, which lets ingest reach the same camera networks and nothing else, bounds those.
"""

from __future__ import annotations

from collections.abc import Iterable

from classpulse_ingest.diagnose import SourceError
from classpulse_web.destinations import DestinationRefused, Network, check_destination


def check_stream_destination(url: str, allowed_networks: Iterable[Network], allowed_schemes: Iterable[str]) -> None:
    """Raises SourceError unless the URL's scheme is allowed and every address its host resolves to is."""
    try:
        check_destination(url, allowed_networks, allowed_schemes, "stream", "CLASSPULSE_SOURCE_ALLOWED_NETWORKS")
    except DestinationRefused as refusal:
        raise SourceError(refusal.cause, str(refusal)) from None
