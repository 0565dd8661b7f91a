"""Accounts and roles: who may do what, checked inside the write path.

With no account in the database the app runs in *local mode*: one person, no login, every action
allowed (the name is whatever they type). As soon as one account exists, every change must come
from an account whose role allows it; :func:`authorise` is called by each function of
:mod:`hitl_core.actions` inside its transaction, so pages, CLI and scripts are held to the same rule.
Passwords are hashed with argon2id (``argon2-cffi``), never stored or logged in clear.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

if TYPE_CHECKING:  # only type hints need the store
    from hitl_core.store import Store, Tx

ROLES: tuple[str, ...] = ("admin", "lead", "annotator", "viewer")
LOCAL_ROLE = "admin"  # local mode: the one person at the keyboard may do everything
ROLE_TEXT: dict[str, str] = {
    "admin": "users, data, deletion and exports, and everything a lead does",
    "lead": "adjudicates, retrains, sets guidelines, costs and the brief, and reviews",
    "annotator": "reviews and corrects predictions",
    "viewer": "reads every page; may vote in a workshop and flag a decision",
}

_EVERYONE = frozenset(ROLES)
_REVIEWERS = frozenset({"admin", "lead", "annotator"})
_LEADS = frozenset({"admin", "lead"})
_ADMINS = frozenset({"admin"})
ALLOWED: dict[str, frozenset[str]] = {
    "label": _REVIEWERS,
    "give feedback": _REVIEWERS,
    "resolve complaint": _REVIEWERS,
    "complain": _EVERYONE,
    "vote": _EVERYONE,
    "adjudicate": _LEADS,
    "retrain": _LEADS,
    "change settings": _LEADS,
    "rollback": _LEADS,
    "edit brief": _LEADS,
    "set costs": _LEADS,
    "set guidelines": _LEADS,
    "run workshop": _LEADS,
    "create project": _ADMINS,
    "add data": _ADMINS,
    "withdraw": _ADMINS,
    "export": _ADMINS,
    "manage users": _ADMINS,
}
MIN_PASSWORD = 8
_hasher = PasswordHasher()


class PermissionDenied(ValueError):
    """A role tried an action it may not do; nothing was written. CLI exit 4."""

    def __init__(self, role: str | None, action: str, *, actor: str = ""):
        self.role, self.action, self.actor = role, action, actor
        if role is None:
            super().__init__(f"permission denied: '{actor}' has no account, so may not {action} "
                             "(an admin adds accounts with `python -m hitl_core users add`)")
        else:
            super().__init__(f"permission denied: {role} may not {action}")


@dataclass(frozen=True)
class User:
    """An account as stored (the password hash never leaves the store)."""

    name: str
    role: str
    created_at: datetime
    created_by: str
    has_password: bool


def can(role: str | None, action: str) -> bool:
    """May this role do this action? Unknown actions are refused, so a typo cannot open a door."""
    return role is not None and role in ALLOWED.get(action, frozenset())


def check_role(role: str) -> str:
    """A valid role name or a message listing the roles."""
    if role not in ROLES:
        raise ValueError(f"Unknown role '{role}': use one of {', '.join(ROLES)}.")
    return role


def role_in(tx: "Tx | Store", actor: str) -> str | None:
    """The actor's role (read inside the write transaction, or from the store for a read such as an
    export): the local role with no accounts, None for a stranger."""
    if not tx.has_users():
        return LOCAL_ROLE
    return tx.user_role(actor)


def authorise(tx: "Tx | Store", actor: str, action: str) -> str:
    """Refuse the action unless the actor's role allows it; returns the role (called inside the write)."""
    if action not in ALLOWED:
        raise KeyError(f"no permission rule for action '{action}'")
    role = role_in(tx, actor)
    if role is None:
        raise PermissionDenied(None, action, actor=actor)
    if not can(role, action):
        raise PermissionDenied(role, action, actor=actor)
    return role


def hash_password(password: str) -> str:
    """argon2id hash with a random salt; refuses passwords too short to mean anything."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"The password has {len(password)} characters; use at least {MIN_PASSWORD}.")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True only for the right password; an account without a password cannot sign in with one."""
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
