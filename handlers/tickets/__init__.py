"""The ticket's life: the state machine with its permissions, and the service applying it."""
