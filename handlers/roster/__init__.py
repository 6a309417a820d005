"""The duty roster: the working-day calendar, who is on duty when, and the roster import."""
