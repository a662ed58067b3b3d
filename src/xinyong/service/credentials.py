"""Credentials: bearer tokens for the API and passwords for the web pages, and who they stand for."""

from __future__ import annotations

import datetime as dt

from xinyong.errors import NotFound
from xinyong.security import passwords, tokens
from xinyong.security.access import Action, Principal, Role, Unauthenticated, decide
from xinyong.security.tokens import TokenInfo
from xinyong.service.door import Area


class Credentials(Area):
    def create_token(
        self,
        principal: Principal,
        role: Role,
        *,
        agency: str | None = None,
        subject: str | None = None,
        label: str | None = None,
        expires_at: dt.datetime | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new bearer token, returned once in clear (only its hash is stored), with its row."""
        with self.door.writing(principal, Action.TOKENS_MANAGE) as (conn, act):
            decide(principal, Action.TOKENS_MANAGE)
            bearer, info = tokens.create(
                conn,
                role,
                now=self.clock.now(),
                actor=principal.audit_actor,
                agency=agency,
                subject=subject,
                label=label,
                expires_at=expires_at,
            )
            act.detail.update(token=info.id, role=role.value, agency=agency, subject=subject, op="create")
            return bearer, info

    def revoke_token(self, principal: Principal, token_id: str) -> TokenInfo:
        with self.door.writing(principal, Action.TOKENS_MANAGE) as (conn, act):
            decide(principal, Action.TOKENS_MANAGE)
            act.detail.update(token=token_id, op="revoke")
            return tokens.revoke(conn, token_id, now=self.clock.now())

    def tokens(self, principal: Principal) -> list[TokenInfo]:
        """Every token and password with its role, binding and status (never a secret)."""
        decide(principal, Action.TOKENS_MANAGE)
        with self.store.read() as conn:
            return tokens.listing(conn)

    def authenticate(self, bearer: str) -> TokenInfo:
        """The active token a bearer secret stands for (Unauthenticated otherwise)."""
        with self.store.read() as conn:
            return tokens.authenticate(conn, bearer, self.clock.now())

    def set_password(
        self,
        principal: Principal,
        login: str,
        password: str,
        role: Role,
        *,
        agency: str | None = None,
        subject: str | None = None,
        label: str | None = None,
    ) -> TokenInfo:
        """Give a log-in a password for the web pages (a credential beside the tokens: see passwords.py)."""
        with self.door.writing(principal, Action.TOKENS_MANAGE) as (conn, act):
            decide(principal, Action.TOKENS_MANAGE)
            info = passwords.set_password(
                conn,
                login,
                password,
                role,
                now=self.clock.now(),
                actor=principal.audit_actor,
                agency=agency,
                subject=subject,
                label=label,
            )
            act.detail.update(token=info.id, role=role.value, agency=agency, subject=subject, op="password")
            return info

    def log_in(self, login: str, password: str) -> TokenInfo:
        """The credential a log-in name and password stand for (Unauthenticated otherwise); a write,
        since a password kept under an older hash is hashed again at its next log-in."""
        with self.store.write() as conn:
            return passwords.authenticate(conn, login, password, self.clock.now())

    def credential(self, token_id: str) -> TokenInfo:
        """A token or password by id, if still active (a web session holds only the id)."""
        with self.store.read() as conn:
            try:
                info = tokens.get(conn, token_id)
            except NotFound:
                raise Unauthenticated("the session's credential no longer exists") from None
        status = info.status(self.clock.now())
        if status != "active":
            raise Unauthenticated(f"the session's credential is {status}")
        return info
