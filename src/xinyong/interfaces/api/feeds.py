"""The routes of enforcers' feeds under /v1: reading a feed, acknowledging a version, and the
published delisting delays. Keys, webhooks and publishing are the administrator's, on the command
line (docs/enforcers.md); the public keys that verify a version are at /v1/audit/checkpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from xinyong.interfaces.api import models
from xinyong.interfaces.api.routes import OPEN, Caller, Svc

router = APIRouter(prefix="/v1", responses=models.PROBLEMS)

Agency = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="The enforcer agency, as schemes name it in `implemented_by`.",
    ),
]
Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="A version of the agency's feed.")]


@router.get("/feeds/{agency}", tags=["feeds"], response_model=models.FeedOut)
def read_feed(
    agency: Agency,
    principal: Caller,
    svc: Svc,
    since: Annotated[
        int, Query(ge=0, le=2**31 - 1, description="Only the versions after this one; 0 (default) for every one.")
    ] = 0,
) -> dict[str, Any]:
    """The agency's feed versions after `since`, each as signed: ADD and DEL keyed hashes (HMAC-SHA-256
    of the identifier with the agency's feed key), for the agency's whole set and per measure. An
    enforcer reads its own agency's feed only (logged)."""
    return svc.feeds.show(principal, agency, since=since)


@router.post(
    "/feeds/{agency}/versions/{version}/acknowledgement", tags=["feeds"], response_model=models.FeedAcknowledged
)
def acknowledge_version(agency: Agency, version: Version, principal: Caller, svc: Svc) -> dict[str, Any]:
    """The agency has applied this version (and so every one before it): the delisting delay of the
    subjects it removed is measured to now. Again for the same version changes nothing."""
    return svc.feeds.acknowledge(principal, agency, version)


@router.get("/statistics/delisting", tags=["feeds"], openapi_extra=OPEN, response_model=models.DelistingOut)
def delisting(principal: Caller, svc: Svc) -> dict[str, Any]:
    """Per agency, the time from a measure ending for a subject to the agency's acknowledgement of the
    feed version that removed it (p50, p90, max, in seconds), and the removals not yet acknowledged.
    Public."""
    return svc.feeds.delays(principal)
