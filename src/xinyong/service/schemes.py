"""Schemes and sources: publishing scheme versions, reading them, authorising source agencies."""

from __future__ import annotations

from collections.abc import Sequence

from xinyong.errors import BadInput, NotFound, did_you_mean
from xinyong.ledger import records as ledger
from xinyong.ledger import registry
from xinyong.rules.schemes import Scheme, SchemeVersion, parse_scheme
from xinyong.security.access import Action, Principal, decide
from xinyong.service.door import Area


class Schemes(Area):
    def versions(self, principal: Principal, scheme: str | None = None) -> list[SchemeVersion]:
        """Every published version of every scheme, or of one (public, in full: no secret rules)."""
        decide(principal, Action.SCHEMES_READ)
        with self.store.read() as conn:
            return registry.scheme_versions(conn, scheme)

    def source_text(self, principal: Principal, scheme: str, version: str | None = None) -> str:
        """A version exactly as published (the newest when `version` is None)."""
        decide(principal, Action.SCHEMES_READ)
        with self.store.read() as conn:
            if version is None:
                versions = registry.scheme_versions(conn, scheme)
                if not versions:
                    raise NotFound(f"scheme {scheme} is not loaded{did_you_mean(scheme, registry.scheme_ids(conn))}")
                version = versions[-1].version
            return registry.source_text(conn, scheme, version)

    def load(
        self, principal: Principal, text: str, *, scheme: Scheme | None = None, where: str = "scheme"
    ) -> tuple[SchemeVersion, bool]:
        """Publish a scheme version (`scheme` when the caller has parsed `text` already, with its
        own locations for errors)."""
        with self.door.writing(principal, Action.SCHEMES_LOAD) as (conn, act):
            decide(principal, Action.SCHEMES_LOAD)
            scheme = scheme or parse_scheme(text, where=where)
            version, added = registry.publish_scheme(conn, scheme, text, self.clock.now(), after=self.door.after)
            act.detail.update(scheme=version.id, version=version.version, added=added)
            return version, added

    def add_source(
        self, principal: Principal, agency: str, behaviours: Sequence[str], title: str | None = None
    ) -> tuple[list[str], list[str]]:
        """Authorise an agency for behaviour codes; returns (codes added, all its codes)."""
        with self.door.writing(principal, Action.SOURCES_MANAGE) as (conn, act):
            decide(principal, Action.SOURCES_MANAGE)
            codes = [c.strip() for c in behaviours if c.strip()]
            if not codes:
                raise BadInput("--behaviours: give at least one behaviour code")
            known = ledger.known_behaviours(conn)
            unknown = [c for c in codes if c not in known]
            if unknown:
                raise BadInput(
                    f"--behaviours: {', '.join(unknown)} is in no loaded scheme's catalogue (load the scheme first)"
                )
            added = registry.add_source(conn, agency, codes, self.clock.now(), title)
            act.detail.update(source=agency, added=added)
            return added, sorted(registry.authorised_behaviours(conn, agency))

    def sources(self, principal: Principal) -> dict[str, set[str]]:
        """Every source agency and the behaviours it may submit."""
        decide(principal, Action.SOURCES_MANAGE)
        with self.store.read() as conn:
            return registry.list_sources(conn)
