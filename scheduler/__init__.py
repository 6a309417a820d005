"""The clock of the service: due-row sweeps, the outbox sender and cron jobs (timers issue).

It reads the deadline and outbox rows that handlers write; it never imports a platform.
"""
