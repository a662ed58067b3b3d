"""Credentials: bearer tokens for the API and passwords for the web pages, who they stand for, the
web's log-in (with its lock-outs) and its sessions."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable

from sqlalchemy import Connection

from xinyong.errors import NotFound, XinyongError
from xinyong.security import lockouts, passwords, sessions, tokens
from xinyong.security.access import Action, Principal, Role, Unauthenticated, decide
from xinyong.security.lockouts import LockedOut
from xinyong.security.tokens import TokenInfo
from xinyong.service.door import Area

__all__ = ["SESSION_LIFETIME", "Credentials", "LockedOut"]

SESSION_LIFETIME = sessions.LIFETIME


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
            sessions.end_all(conn, info.id)  # a new password ends the log-in's web sessions
            act.detail.update(token=info.id, role=role.value, agency=agency, subject=subject, op="password")
            return info

    def log_in(self, login: str, password: str, *, address: str | None = None) -> TokenInfo:
        """The credential a log-in name and password stand for (Unauthenticated otherwise), with the
        lock-outs of `security.lockouts`: LockedOut, before any password is checked, while the name
        or the `address` (the client's, as the interface knows it) is locked out.

        Four short steps, none waiting for another's slow hash: a read (is either locked out?), a
        write that records the attempt (so that attempts in flight count), the password checked
        outside any transaction, and a write with the outcome (a stale hash made again, or the
        failure counted and perhaps a lock-out begun, audited once)."""
        return self._attempt(login, address, lambda: self._password(login, password))

    def log_in_with_token(self, bearer: str, *, address: str | None = None) -> TokenInfo:
        """A web log-in by pasting a bearer token: `authenticate`, under the address's lock-out
        (a token cannot be guessed, but a guesser at an address is refused whatever it sends)."""
        return self._attempt(None, address, lambda: self.authenticate(bearer))

    def _password(self, login: str, password: str) -> TokenInfo:
        with self.store.read() as conn:
            found = passwords.stored(conn, login)
        info, stale = passwords.verify(found, password, self.clock.now())
        if stale:
            with self.store.write() as conn:
                passwords.rehash(conn, found, password)
        return info

    def _attempt(self, login: str | None, address: str | None, check: Callable[[], TokenInfo]) -> TokenInfo:
        name, where = lockouts.login_key(login), lockouts.address_key(address)
        now = self.clock.now()
        with self.store.read() as conn:
            wait = lockouts.locked(conn, name, where, now)
        if wait is not None:
            raise LockedOut(wait)
        with self.store.write() as conn:
            attempt = lockouts.reserve(conn, name, where, now)
        try:
            info = check()
        except Unauthenticated:
            with self.store.write() as conn:
                begun = lockouts.failed(conn, name, where, self.clock.now())
            if begun:
                self.door.log([lockout.entry() for lockout in begun])
                raise LockedOut(max(lockout.seconds for lockout in begun)) from None
            raise
        except BaseException:
            # Nothing was decided (the store could not answer, say): the attempt does not count.
            with contextlib.suppress(XinyongError), self.store.write() as conn:
                lockouts.succeeded(conn, attempt, None, self.clock.now())
            raise
        with self.store.write() as conn:
            lockouts.succeeded(conn, attempt, name, self.clock.now())
        return info

    def start_session(self, info: TokenInfo) -> str:
        """A web session for a credential that has just logged in: the secret for its cookie."""
        with self.store.write() as conn:
            return sessions.start(conn, info.id, self.clock.now())

    def session(self, secret: str) -> TokenInfo:
        """The credential of a web session that is still on, if the credential is still active
        (Unauthenticated otherwise): log-out, revocation and expiry all end it at once."""
        now = self.clock.now()
        with self.store.read() as conn:
            return self._active(conn, sessions.find(conn, secret, now), now)

    def end_session(self, secret: str) -> None:
        """Log-out: the session ends on the server, so a copy of its cookie opens nothing."""
        with self.store.write() as conn:
            sessions.end(conn, secret)

    def credential(self, token_id: str) -> TokenInfo:
        """A token or password by id, if still active."""
        with self.store.read() as conn:
            return self._active(conn, token_id, self.clock.now())

    @staticmethod
    def _active(conn: Connection, token_id: str, now: dt.datetime) -> TokenInfo:
        try:
            info = tokens.get(conn, token_id)
        except NotFound:
            raise Unauthenticated("the session's credential no longer exists") from None
        status = info.status(now)
        if status != "active":
            raise Unauthenticated(f"the session's credential is {status}")
        return info
