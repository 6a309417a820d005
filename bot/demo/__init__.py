"""The demo site `make run` seeds on a fresh database: 示例法院 with its twelve subsystems, a few
assets per subsystem and six invented people (two reporters, two engineers, a supervisor, a
manager), each with a web chat account named like their WeCom userid."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.directory.assets_import import ASSET_COLUMNS, import_assets
from handlers.directory.people_import import PEOPLE_COLUMNS, import_people
from handlers.directory.tables import read_rows
from storage.enums import Channel
from storage.models import ChatIdentity, Site
from storage.repositories.people import link_identity
from storage.repositories.sites import create_site

HERE = Path(__file__).parent
SLUG = "demo"


async def seed_demo(session: AsyncSession, clock: Clock) -> bool:
    """Create the demo site unless the database already has a site; True when seeded."""
    if (await session.exec(select(Site))).first() is not None:
        return False
    await create_site(session, "示例法院", SLUG, clock.now())
    await import_assets(session, read_rows(HERE / "assets.csv", ASSET_COLUMNS))
    await import_people(session, read_rows(HERE / "people.csv", PEOPLE_COLUMNS), clock.now())
    wecom = (await session.exec(select(ChatIdentity).where(ChatIdentity.channel == Channel.WECOM))).all()
    for identity in wecom:
        await link_identity(session, identity.person_id, Channel.WEBCHAT, identity.external_id)
    return True
