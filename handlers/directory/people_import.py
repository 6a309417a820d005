"""Importing people: columns site, name, role, phone, telegram_id, wecom_userid.

A person is recognised by any of phone, Telegram id or WeCom userid, in the database or
earlier in the same file, so one person may have several rows (several roles or sites) and
importing the same file twice changes nothing. Every row is checked before anything is
written: one bad row refuses the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.directory.rows import (
    ImportRejected,
    ImportResult,
    Progress,
    RowError,
    Tally,
    check_pattern,
    check_site,
    check_text,
)
from handlers.directory.tables import Row
from storage.enums import Channel, Role
from storage.models import Person, Site
from storage.repositories.people import (
    add_membership,
    identity,
    link_identity,
    person_by_identity,
    person_by_phone,
    roles_at,
)
from storage.repositories.sites import site_by_slug

PEOPLE_COLUMNS = ("site", "name", "role", "phone", "telegram_id", "wecom_userid")
_ROLES = ", ".join(r.value for r in Role)


@dataclass(eq=False)
class _Entry:
    """One person of the file, existing (person_id) or new."""

    person_id: int | None
    name: str = ""
    row: int | None = None  # the first row of this file naming the person
    phone: str = ""
    identities: set[tuple[Channel, str]] = field(default_factory=set)
    memberships: set[tuple[int, Role]] = field(default_factory=set)


def _normalise_phone(value: str) -> str:
    return re.sub(r"[\s-]", "", value)


async def import_people(
    session: AsyncSession, rows: list[Row], now: datetime, progress: Progress | None = None
) -> ImportResult:
    """Check every row, then create or update people, identities and memberships."""
    sites: dict[str, Site | None] = {}
    entries: list[_Entry] = []
    matcher = _Matcher(session)
    errors: list[RowError] = []
    for row in rows:
        reasons: list[str] = []
        site = await check_site(reasons, row.cells, sites, lambda slug: site_by_slug(session, slug))
        name = check_text(reasons, row.cells, "name", 60, required=True)
        role_text = row.cells.get("role", "").strip().lower()
        if role_text not in {r.value for r in Role}:
            reasons.append(f"role {role_text!r} is not one of {_ROLES}")
        phone = _normalise_phone(check_pattern(reasons, row.cells, "phone", r"\+?[\d\s-]{5,24}", "digits"))
        if len(phone) > 20:
            reasons.append("phone is longer than 20 digits")
        telegram = check_pattern(reasons, row.cells, "telegram_id", r"\d{1,15}", "a numeric Telegram user id")
        wecom = check_pattern(
            reasons, row.cells, "wecom_userid", r"[A-Za-z0-9_.@-]{1,64}", "letters, digits, _ . @ -"
        )
        if not (phone or telegram or wecom):
            reasons.append("give a phone, telegram_id or wecom_userid so the person can be recognised")
        identifiers = {
            kind: value
            for kind, value in (
                ("phone", phone),
                (Channel.TELEGRAM.value, telegram),
                (Channel.WECOM.value, wecom),
            )
            if value
        }
        entry = None if reasons else await matcher.match(identifiers)
        if entry is None and not reasons:
            reasons.append("phone, telegram_id and wecom_userid belong to different people")
        elif entry is not None and entry.name and entry.name != name:
            where = f"in row {entry.row}" if entry.row else "already registered"
            reasons.append(f"these contact details belong to {entry.name} ({where})")
        if reasons or entry is None:
            errors.append(RowError(row.number, f"({name or '?'}) " + "; ".join(reasons)))
        else:
            if entry not in entries:
                entries.append(entry)
            entry.name = name
            entry.row = entry.row or row.number
            entry.phone = phone or entry.phone
            if telegram:
                entry.identities.add((Channel.TELEGRAM, telegram))
            if wecom:
                entry.identities.add((Channel.WECOM, wecom))
            assert site is not None and site.id is not None
            entry.memberships.add((site.id, Role(role_text)))
            matcher.remember(identifiers, entry)
        if progress:
            progress()
    if errors:
        raise ImportRejected(errors)
    return await _write(session, entries, now, len(rows))


@dataclass
class _Matcher:
    """Finds the person a row's identifiers point to, in this file or in the database."""

    session: AsyncSession
    by_key: dict[str, _Entry] = field(default_factory=dict)
    by_person: dict[int, _Entry] = field(default_factory=dict)

    async def match(self, identifiers: dict[str, str]) -> _Entry | None:
        """The one entry for these identifiers (a new one if none); None if they disagree."""
        found: dict[int, _Entry] = {}
        for kind, value in identifiers.items():
            entry = self.by_key.get(f"{kind}:{value}") or await self._stored(kind, value)
            if entry is not None:
                found[id(entry)] = entry
        if len(found) > 1:
            return None
        return next(iter(found.values()), None) or _Entry(person_id=None)

    async def _stored(self, kind: str, value: str) -> _Entry | None:
        if kind == "phone":
            person = await person_by_phone(self.session, value)
        else:
            person = await person_by_identity(self.session, Channel(kind), value)
        if person is None or person.id is None:
            return None
        return self.by_person.setdefault(person.id, _Entry(person_id=person.id, name=person.name))

    def remember(self, identifiers: dict[str, str], entry: _Entry) -> None:
        """Later rows with any of these identifiers are the same person."""
        for kind, value in identifiers.items():
            self.by_key[f"{kind}:{value}"] = entry


async def _write(session: AsyncSession, entries: list[_Entry], now: datetime, rows: int) -> ImportResult:
    tally = Tally(rows)
    for entry in entries:
        person = await session.get(Person, entry.person_id) if entry.person_id is not None else None
        is_new = person is None
        if person is None:
            person = Person(name=entry.name, phone=entry.phone or None, created_at=now)
        changed = person.name != entry.name or bool(entry.phone and person.phone != entry.phone)
        person.name = entry.name
        person.phone = entry.phone or person.phone
        session.add(person)
        await session.flush()
        assert person.id is not None
        for channel, external_id in sorted(entry.identities):
            changed |= await identity(session, channel, external_id) is None
            await link_identity(session, person.id, channel, external_id)
        for site_id, role in sorted(entry.memberships):
            changed |= role not in await roles_at(session, person.id, site_id)
            await add_membership(session, person.id, site_id, role)
        tally.count(is_new, changed)
    return tally.result()
