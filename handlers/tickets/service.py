"""Applying the state machine to stored tickets: every change checked, logged and timed.

The service works inside the caller's transaction (it flushes, never commits). Each change
locks the ticket row, checks the rule and the actor, updates the ticket, appends a
TicketEvent and brings the ticket's Deadline rows in line with the SLA rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock as TimeSource
from handlers.sla import rules
from handlers.sla.policy import LEVELS, Policy, PolicyBook
from handlers.tickets.machine import (
    LEVEL_AUTHORITY,
    RULES,
    SYSTEM,
    Action,
    Actor,
    Forbidden,
    IllegalTransition,
    TicketRuleError,
    check,
    guard,
    level_authority,
    system_actor,
)
from storage.due import note_due
from storage.enums import Clock, Role, TicketStatus
from storage.models import Asset, Deadline, Person, Site, Subsystem, Ticket, TicketEvent, Timer
from storage.pinned import pin, pinned_get
from storage.repositories.people import roles_at
from storage.repositories.tickets import OPEN_STATUSES, deadlines_of, get_ticket
from storage.repositories.timers import timers_of

RISE_AUTHORITY = "rise"  # a risen level is the contract's word: only the supervisor overrides it


@dataclass
class TicketService:
    """Ticket operations within one session (one transaction)."""

    session: AsyncSession
    policies: PolicyBook
    clock: TimeSource

    # -- reading ---------------------------------------------------------------------------

    async def policy_of(self, ticket: Ticket) -> Policy:
        """The policy of the ticket's site."""
        return await site_policy(self.session, self.policies, ticket.site_id)

    async def actor(self, person_id: int | None, site_id: int) -> Actor:
        """The actor ``person_id`` (None: the system) is at ``site_id``."""
        if person_id is None:
            return system_actor()
        person = await self.session.get(Person, person_id)
        if person is None:
            raise Forbidden("site.member", f"person {person_id} does not exist")
        return Actor(person_id, await roles_at(self.session, person_id, site_id), person.name)

    # -- creating ---------------------------------------------------------------------------

    async def report(
        self,
        *,
        site_id: int,
        reporter_id: int,
        subsystem_id: int | None,
        description: str,
        asset_id: int | None = None,
        place: str = "",
        reported_at: datetime | None = None,
        level: int | None = None,
        confirmed: bool = False,
        received_at: datetime | None = None,
    ) -> Ticket:
        """Open a ticket; its clocks start at ``reported_at``.

        ``reported_at`` (default now) is the reporter's first message: the promised times
        count from the report, not from the end of the dialogue (``received_at``, when it
        came in later, is kept on the timeline). With ``level`` the ticket is classified in
        the same step: ``confirmed`` by the reporter, or provisionally by the service (the
        classification window ran out). Either way its deadlines are set once.
        """
        actor = await self.actor(reporter_id, site_id)
        if not actor.roles:
            raise Forbidden("site.member", f"{actor.name} is not a member of this site")
        if subsystem_id is not None:
            subsystem = await pinned_get(self.session, Subsystem, subsystem_id)
            if subsystem is None or subsystem.site_id != site_id:
                raise TicketRuleError("report.subsystem", "the subsystem does not belong to this site")
        if asset_id is not None:
            asset = await pinned_get(self.session, Asset, asset_id)
            if asset is None or asset.site_id != site_id:
                raise TicketRuleError("report.asset", "the asset does not belong to this site")
        if not description.strip():
            raise TicketRuleError("report.description", "the description is empty")
        if level is not None:
            _check_level(level)
        policy = await site_policy(self.session, self.policies, site_id)
        now = self.clock.now()
        if reported_at is not None and reported_at > now:
            raise TicketRuleError("report.time", "a report cannot come from the future")
        reported_at = reported_at or now
        ticket = Ticket(
            site_id=site_id,
            subsystem_id=subsystem_id,
            asset_id=asset_id,
            place=place,
            reporter_id=reporter_id,
            level=policy.default_level,
            status=TicketStatus.REPORTED,
            description=description.strip(),
            reported_at=reported_at,
            clocks_started_at=reported_at,
            revision=1,
        )
        times = {} if received_at is None else {"received_at": received_at.isoformat()}
        steps: list[tuple[Actor, str, str | None, str, dict[str, Any]]] = [
            (actor, "report", None, TicketStatus.REPORTED.value, times)
        ]
        if level is not None:  # classified in the same step: one INSERT, one deadline sync
            classifier = actor if confirmed else system_actor()
            detail = {"answered_level": level, "confirmed": confirmed, "provisional_level": ticket.level}
            ticket.level, ticket.level_confirmed = level, confirmed
            ticket.level_set_by = level_authority(actor, reporter_id) if confirmed else SYSTEM
            ticket.classified_at, ticket.status, ticket.revision = now, TicketStatus.CLASSIFIED, 2
            steps.append((classifier, Action.CLASSIFY.value, "reported", "classified", detail))
        self.session.add(ticket)
        await self.session.flush()
        pin(self.session, ticket)
        events = [
            {
                "ticket_id": ticket.id,
                "at": now,
                "actor_id": who.person_id,
                "kind": kind,
                "old": old,
                "new": new,
                "detail": detail,
            }
            for who, kind, old, new, detail in steps
        ]
        await (await self.session.connection()).execute(insert(TicketEvent), events)
        await sync_deadlines(self.session, ticket, policy, now, fresh=True)
        return ticket

    # -- status steps ---------------------------------------------------------------------

    async def classify(self, ticket_id: int, actor_id: int | None, level: int, *, confirmed: bool) -> Ticket:
        """Settle the level after the classification dialogue (or its window's end).

        A level the client already set with a stronger word (the supervisor stepping in, or
        the reporter before the window closed) is kept: the ticket is classified at it.
        """
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.CLASSIFY)
        _check_level(level)
        capacity = level_authority(actor, ticket.reporter_id) if confirmed else SYSTEM
        kept = LEVEL_AUTHORITY[capacity] < LEVEL_AUTHORITY.get(ticket.level_set_by, 0)
        detail = {"answered_level": level, "confirmed": confirmed, "kept_level_set_by": ticket.level_set_by}
        if not kept:
            detail = {"answered_level": level, "confirmed": confirmed, "provisional_level": ticket.level}
            ticket.level = level
            ticket.level_confirmed = confirmed
            ticket.level_set_by = capacity
        ticket.classified_at = ticket.classified_at or self.clock.now()
        return await self._step(ticket, actor, Action.CLASSIFY, detail, policy)

    async def acknowledge(self, ticket_id: int, actor_id: int) -> Ticket:
        """An engineer takes the ticket (接单); they become its assignee."""
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.ACKNOWLEDGE)
        ticket.acknowledged_at = self.clock.now()
        ticket.assignee_id = actor_id
        return await self._step(ticket, actor, Action.ACKNOWLEDGE, {}, policy)

    async def arrive(self, ticket_id: int, actor_id: int) -> Ticket:
        """The engineer is on site (到场); a resolve-from-arrival clock starts."""
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.ARRIVE)
        ticket.arrived_at = self.clock.now()
        return await self._step(ticket, actor, Action.ARRIVE, {}, policy)

    async def restore(self, ticket_id: int, actor_id: int, note: str = "") -> Ticket:
        """Core business runs again (已恢复)."""
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.RESTORE)
        ticket.restored_at = self.clock.now()
        return await self._step(ticket, actor, Action.RESTORE, _note(note), policy)

    async def resolve(self, ticket_id: int, actor_id: int, note: str = "") -> Ticket:
        """The fault is fixed (已解决); a fix without a restore mark restores too."""
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.RESOLVE)
        now = self.clock.now()
        ticket.resolved_at = now
        ticket.restored_at = ticket.restored_at or now
        return await self._step(ticket, actor, Action.RESOLVE, _note(note), policy)

    async def close(self, ticket_id: int, actor_id: int) -> Ticket:
        """The client signs the fix off."""
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.CLOSE)
        ticket.closed_at = self.clock.now()
        return await self._step(ticket, actor, Action.CLOSE, {}, policy)

    async def cancel(self, ticket_id: int, actor_id: int, reason: str = "") -> Ticket:
        """Withdraw a report (a mistake, a duplicate, it works again by itself)."""
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.CANCEL)
        ticket.cancelled_at = self.clock.now()
        return await self._step(ticket, actor, Action.CANCEL, _note(reason), policy)

    # -- level ------------------------------------------------------------------------------

    async def set_level(self, ticket_id: int, actor_id: int, level: int) -> Ticket:
        """The client (the reporter, or the supervisor with the last word) settles the level."""
        _check_level(level)
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.SET_LEVEL)
        old = str(ticket.level)
        self._settle_level(ticket, actor, level)
        return await self._step(ticket, actor, Action.SET_LEVEL, {}, policy, old=old, new=str(level))

    async def propose_level(self, ticket_id: int, actor_id: int, level: int, reason: str = "") -> Ticket:
        """An engineer suggests another level; the client accepts or rejects it."""
        _check_level(level)
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.PROPOSE_LEVEL)
        if level == ticket.level:
            raise TicketRuleError("level.same", f"the ticket is already level {level}")
        ticket.proposed_level = level
        ticket.proposed_by_id = actor_id
        detail = _note(reason)
        return await self._step(
            ticket,
            actor,
            Action.PROPOSE_LEVEL,
            detail,
            policy,
            old=str(ticket.level),
            new=str(level),
        )

    async def answer_proposal(self, ticket_id: int, actor_id: int, *, accept: bool) -> Ticket:
        """The client's answer to the engineer's proposed level; the client's choice stands."""
        action = Action.ACCEPT_LEVEL if accept else Action.REJECT_LEVEL
        ticket, actor, policy = await self._begin(ticket_id, actor_id, action)
        proposed = ticket.proposed_level
        assert proposed is not None  # the guard refuses an answer without a proposal
        old = str(ticket.level)
        if accept:
            self._settle_level(ticket, actor, proposed)
        ticket.proposed_level = None
        ticket.proposed_by_id = None
        detail = {"proposed_level": proposed}
        return await self._step(ticket, actor, action, detail, policy, old=old, new=str(ticket.level))

    def _settle_level(self, ticket: Ticket, actor: Actor, level: int) -> None:
        capacity = level_authority(actor, ticket.reporter_id)
        ticket.level = level
        ticket.level_confirmed = True
        ticket.level_set_by = capacity
        ticket.proposed_level = None
        ticket.proposed_by_id = None
        if ticket.classified_at is None:
            ticket.classified_at = self.clock.now()

    # -- people, time, notes ------------------------------------------------------------------

    async def assign(self, ticket_id: int, actor_id: int, engineer_id: int) -> Ticket:
        """Hand the ticket to another engineer of the site."""
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.ASSIGN)
        if engineer_id == ticket.assignee_id:
            raise TicketRuleError("assign.same", "the ticket is with that engineer already")
        if Role.ENGINEER not in await roles_at(self.session, engineer_id, ticket.site_id):
            raise TicketRuleError("assign.engineer", "a ticket can only be handed to an engineer of its site")
        old = None if ticket.assignee_id is None else str(ticket.assignee_id)
        ticket.assignee_id = engineer_id
        return await self._step(ticket, actor, Action.ASSIGN, {}, policy, old=old, new=str(engineer_id))

    async def delay(self, ticket_id: int, actor_id: int, new_due: datetime, reason: str) -> Ticket:
        """Record a third-party delay: the client accepted a new resolve time."""
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.DELAY)
        if not reason.strip():
            raise TicketRuleError("sla.delay_reason", "a third-party delay needs its reason")
        try:
            original = rules.third_party_delay(ticket, policy, new_due, self.clock.now())
        except rules.SlaError as exc:
            raise TicketRuleError("sla.delay", str(exc)) from exc
        ticket.resolve_due_override = new_due
        old = None if original is None else original.isoformat()
        detail = {"reason": reason.strip()}
        return await self._step(ticket, actor, Action.DELAY, detail, policy, old=old, new=new_due.isoformat())

    async def note(self, ticket_id: int, actor_id: int, text: str) -> Ticket:
        """A progress note on the timeline."""
        ticket, actor, policy = await self._begin(ticket_id, actor_id, Action.NOTE)
        if not text.strip():
            raise TicketRuleError("note.empty", "the note is empty")
        return await self._step(ticket, actor, Action.NOTE, {"text": text.strip()}, policy)

    async def log(self, ticket: Ticket, kind: str, detail: dict[str, Any], policy: Policy) -> None:
        """A timeline line written by the service itself (a reminder sent, a breach seen) on a
        ticket the caller holds locked; a breach is marked on its deadline row."""
        self._log(ticket, system_actor(), kind, None, None, detail)
        await sync_deadlines(self.session, ticket, policy, self.clock.now(), timers=False)

    async def apply_rise(self, ticket_id: int) -> rules.Rise | None:
        """Raise the level if the resolve deadline was missed (called by the scheduler).

        A ticket that was resolved, closed or cancelled meanwhile simply has no rise.
        """
        try:
            ticket, actor, policy = await self._begin(ticket_id, None, Action.RISE)
        except IllegalTransition:
            return None
        rise = rules.rise(ticket, policy, self.clock.now())
        if rise is None:
            return None
        if rise.restarts_clocks:
            ticket.level = rise.new_level
            ticket.level_set_by = RISE_AUTHORITY
            ticket.clocks_started_at = rise.at
            ticket.resolve_due_override = None
        ticket.manager_flagged = ticket.manager_flagged or rise.flag_manager
        detail = {"restarts_clocks": rise.restarts_clocks, "flag_manager": rise.flag_manager}
        old, new = str(rise.old_level), str(rise.new_level)
        await self._step(ticket, actor, Action.RISE, detail, policy, old=old, new=new)
        return rise

    # -- machinery ----------------------------------------------------------------------------

    async def _begin(
        self, ticket_id: int, actor_id: int | None, action: Action
    ) -> tuple[Ticket, Actor, Policy]:
        ticket = await get_ticket(self.session, ticket_id, for_update=True)
        if ticket is None:
            raise TicketRuleError("ticket.exists", f"there is no ticket {ticket_id}")
        actor = await self.actor(actor_id, ticket.site_id)
        check(action, TicketStatus(ticket.status), actor, ticket.reporter_id)
        guard(action, ticket, actor)
        return ticket, actor, await self.policy_of(ticket)

    async def _step(
        self,
        ticket: Ticket,
        actor: Actor,
        action: Action,
        detail: dict[str, Any],
        policy: Policy,
        *,
        old: str | None = None,
        new: str | None = None,
    ) -> Ticket:
        target = RULES[action].target
        if target is not None:
            old, new = TicketStatus(ticket.status).value, target.value
            ticket.status = target
        await self._record(ticket, actor, action.value, old, new, detail, policy)
        return ticket

    async def _record(
        self,
        ticket: Ticket,
        actor: Actor,
        kind: str,
        old: str | None,
        new: str | None,
        detail: dict[str, Any],
        policy: Policy,
    ) -> None:
        self._log(ticket, actor, kind, old, new, detail)
        await sync_deadlines(self.session, ticket, policy, self.clock.now())

    def _log(
        self,
        ticket: Ticket,
        actor: Actor,
        kind: str,
        old: str | None,
        new: str | None,
        detail: dict[str, Any],
    ) -> None:
        assert ticket.id is not None
        ticket.revision += 1
        self.session.add(ticket)
        self.session.add(
            TicketEvent(
                ticket_id=ticket.id,
                at=self.clock.now(),
                actor_id=actor.person_id,
                kind=kind,
                old=old,
                new=new,
                detail=detail,
            )
        )


async def site_policy(session: AsyncSession, policies: PolicyBook, site_id: int) -> Policy:
    """The policy a site's tickets follow (its override over the base policy)."""
    site = await pinned_get(session, Site, site_id)
    if site is None:
        raise TicketRuleError("site.exists", f"there is no site {site_id}")
    return policies.for_site(site.slug, site.policy_toml)


async def sync_deadlines(
    session: AsyncSession,
    ticket: Ticket,
    policy: Policy,
    now: datetime,
    *,
    fresh: bool = False,
    timers: bool = True,
) -> None:
    """Make the ticket's Deadline rows say what the SLA rules say (one row per clock), and its
    timers (unless ``timers`` is False: a line on the timeline moves no clock). ``fresh``: the
    ticket was just created, so it has no rows yet."""
    assert ticket.id is not None
    rows: dict[Clock, Deadline] = {} if fresh else await deadlines_of(session, ticket.id)
    wanted = {s.clock: s for s in rules.evaluate(ticket, policy, now) if s.due_at is not None}
    if TicketStatus(ticket.status) is TicketStatus.CANCELLED:
        wanted = {}
    for clock, gone in rows.items():
        if clock not in wanted:
            await session.delete(gone)
    new: list[dict[str, Any]] = []
    for clock, state in wanted.items():
        assert state.due_at is not None
        breached = state.status in (rules.ClockStatus.BREACHED, rules.ClockStatus.MET_LATE)
        row = rows.get(clock)
        if row is None:
            new.append(
                {
                    "ticket_id": ticket.id,
                    "clock": clock,
                    "due_at": state.due_at,
                    "met_at": state.met_at,
                    "breached_at": state.due_at if breached else None,
                }
            )
            continue
        if row.due_at != state.due_at:
            row.breached_at = None
        row.due_at, row.met_at = state.due_at, state.met_at
        if breached and row.breached_at is None:
            row.breached_at = state.due_at
        session.add(row)
    if new:
        await (await session.connection()).execute(insert(Deadline), new)
    if timers:
        await sync_timers(session, ticket, policy, now, fresh=fresh)


async def sync_timers(
    session: AsyncSession, ticket: Ticket, policy: Policy, now: datetime, *, fresh: bool = False
) -> None:
    """Keep one reminder per policy fraction and one breach timer per running clock.

    A clock that is met (or a ticket that ended) drops its pending timers at once, so
    acknowledging stops the paging; a clock whose due time moved gets new ones. Fired
    timers stay as history and are never created twice for the same due time.
    """
    assert ticket.id is not None
    wanted: set[tuple[str, Clock, float | None, datetime]] = set()
    if TicketStatus(ticket.status) in OPEN_STATUSES:
        starts = rules.clock_starts(ticket, policy)
        for state in rules.evaluate(ticket, policy, now):
            start = starts.get(state.clock)
            if state.met_at is not None or state.due_at is None or start is None:
                continue
            wanted.add(("breach", state.clock, None, state.due_at))
            for share, at in rules.reminder_times(start, state.due_at, policy.reminders):
                if at > now:
                    wanted.add(("reminder", state.clock, share, at))
    have = {
        (t.kind, Clock(t.clock), t.fraction, t.due_at): t
        for t in ([] if fresh else await timers_of(session, ticket.id))
        if t.clock is not None
    }
    stale = [t.id for key, t in have.items() if key not in wanted and t.fired_at is None]
    if stale:
        await (await session.connection()).execute(delete(Timer).where(col(Timer.id).in_(stale)))
    new = sorted(wanted - have.keys(), key=lambda w: w[3])
    if new:
        rows = [
            {"ticket_id": ticket.id, "kind": kind, "clock": clock, "fraction": fraction, "due_at": due_at}
            for kind, clock, fraction, due_at in new
        ]
        await (await session.connection()).execute(insert(Timer), rows)
        note_due(session, new[0][3])


def _check_level(level: int) -> None:
    if level not in LEVELS:
        raise TicketRuleError("level.range", f"a level is 1, 2 or 3, not {level}")


def _note(text: str) -> dict[str, Any]:
    return {"note": text.strip()} if text.strip() else {}
