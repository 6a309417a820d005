"""Invite codes."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.enums import Role
from storage.models import Invite

#: No 0/O or 1/I/L: codes are read aloud and typed on phones.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


async def create_invite(
    session: AsyncSession, site_id: int, role: Role, now: datetime, valid: timedelta = timedelta(days=14)
) -> Invite:
    """A new single-use code for ``role`` at a site."""
    code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    invite = Invite(code=code, site_id=site_id, role=role, created_at=now, expires_at=now + valid)
    session.add(invite)
    await session.flush()
    return invite


async def usable_invite(session: AsyncSession, code: str, now: datetime) -> Invite | None:
    """The invite with ``code`` if it is unused and not expired (locked for this transaction)."""
    query = select(Invite).where(Invite.code == code.strip().upper()).with_for_update()
    invite = (await session.exec(query)).first()
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        return None
    return invite
