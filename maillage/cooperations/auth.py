"""Users, passwords, API tokens and roles of the register.

Roles, weakest first: ``reader`` (may read, may not write), ``editor`` (may create, edit, end,
delete and undo cooperations), ``admin`` (editor + manages users). Reading the register needs
no login; every write needs an authenticated editor or admin.

Passwords are hashed with ``hashlib.scrypt`` (N=2**14, r=8, p=1, 16-byte random salt), stored
as ``scrypt$N$r$p$salt$hash`` (base64); they are compared in constant time. API tokens are
random 32-byte URL-safe strings shown once at creation; only their SHA-256 is stored.

The very first user may be created without credentials (bootstrap); afterwards only an admin
may add users.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maillage.cooperations.db import TokenRow, UserRow, utcnow
from maillage.cooperations.errors import AuthError, DuplicateRecord, PermissionDenied
from maillage.cooperations.vocab import USER_ROLES

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    """Salted scrypt hash of ``password`` (see the module docstring for the format)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the ``stored`` hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(
        password.encode("utf-8"),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(expected),
    )
    return hmac.compare_digest(actual, expected)


def count_users(session: Session) -> int:
    """Number of users of the register."""
    return session.scalar(select(func.count()).select_from(UserRow)) or 0


def add_user(
    session: Session, name: str, password: str, role: str = "reader", *, by: UserRow | None = None
) -> UserRow:
    """Create a user; ``by`` must be an admin unless the register has no user yet.

    Raises
    ------
    PermissionDenied, DuplicateRecord, AuthError (password too short, unknown role)
    """
    if role not in USER_ROLES:
        raise AuthError(f"role {role!r} is unknown; choose one of {', '.join(USER_ROLES)}")
    if count_users(session) > 0:
        if by is None:
            raise AuthError("adding a user needs an admin's credentials (--user/--password)")
        require_role(by, "admin")
    name = name.strip()
    if not name:
        raise AuthError("a user needs a name")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(UserRow).where(UserRow.name == name)) is not None:
        raise DuplicateRecord(f"user {name!r} already exists")
    user = UserRow(
        name=name, role=role, password_hash=hash_password(password), active=True,
        created_at=utcnow(),
    )  # fmt: skip
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, name: str | None, password: str | None) -> UserRow:
    """The user ``name`` if ``password`` is right; :class:`AuthError` otherwise."""
    if not name or password is None:
        raise AuthError(
            "credentials needed: give --user and --password "
            "(or set MAILLAGE_USER and MAILLAGE_PASSWORD)"
        )
    user = session.scalar(select(UserRow).where(UserRow.name == name))
    if user is None or not user.active or not verify_password(password, user.password_hash):
        raise AuthError("wrong user name or password")
    return user


def create_token(session: Session, user: UserRow, label: str | None = None) -> str:
    """Create an API token for ``user``; returns the token (shown once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    session.add(
        TokenRow(user_id=user.id, token_hash=_token_hash(token), label=label, created_at=utcnow())
    )
    session.flush()
    return token


def authenticate_token(session: Session, token: str | None) -> UserRow:
    """The user owning ``token``; :class:`AuthError` when unknown."""
    if not token:
        raise AuthError("an API token is needed")
    row = session.scalar(select(TokenRow).where(TokenRow.token_hash == _token_hash(token)))
    if row is None or not row.user.active:
        raise AuthError("unknown or revoked API token")
    return row.user


def revoke_tokens(session: Session, user: UserRow) -> int:
    """Delete every token of ``user``; returns how many."""
    rows = session.scalars(select(TokenRow).where(TokenRow.user_id == user.id)).all()
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def require_role(user: UserRow | None, role: str) -> UserRow:
    """Return ``user`` if its role is at least ``role``; raise AuthError/PermissionDenied."""
    if user is None:
        raise AuthError("this change needs an authenticated user")
    if USER_ROLES.index(user.role) < USER_ROLES.index(role):
        raise PermissionDenied(f"user {user.name!r} is {user.role}; this change needs {role}")
    return user
