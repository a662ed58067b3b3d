"""Who is on the other end of a request: the client's address and whether it came over HTTPS.

Both decide something: the address is what log-in lock-outs count against (`service.credentials`),
and HTTPS is when cookies get the Secure flag. Behind a reverse proxy the connection comes from the
proxy, which says who the client was in `X-Forwarded-For` and how it came in `X-Forwarded-Proto` —
but anyone can send those headers, so a guesser would name a fresh address for every guess. They
are read only when `XINYONG_PROXY_HOPS` says how many proxies stand in front (each appends the
address it saw to X-Forwarded-For): with N, the client is the N-th address from the right, the one
the outermost trusted proxy wrote, and whatever a client wrote itself is further left and never
read; the scheme is the last X-Forwarded-Proto value, as the nearest proxy set it. Without the
setting (the default, 0) the connecting address is the client and the request's own scheme says
whether it came over HTTPS.
"""

from __future__ import annotations

from starlette.requests import Request

from xinyong import settings


def _from_right(request: Request, header: str, hops: int) -> str | None:
    """The `hops`-th value from the right of a header's comma-separated values (all its lines)."""
    values = [v.strip() for line in request.headers.getlist(header) for v in line.split(",") if v.strip()]
    return values[-hops] if len(values) >= hops else None


def client_address(request: Request) -> str | None:
    """The client's address: the connection's, or the one the trusted proxies forwarded."""
    hops = settings.current().proxy_hops
    if hops:
        forwarded = _from_right(request, "x-forwarded-for", hops)
        if forwarded is not None:
            return forwarded
    return request.client.host if request.client else None


def is_https(request: Request) -> bool:
    """Whether the client's request came over HTTPS (to this server, or to the trusted proxy)."""
    if request.url.scheme == "https":
        return True
    hops = settings.current().proxy_hops
    if hops:
        proto = _from_right(request, "x-forwarded-proto", 1)
        return proto is not None and proto.lower() == "https"
    return False
