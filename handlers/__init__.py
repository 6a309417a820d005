"""What the bot says and does, channel-free: SLA rules, the ticket state machine, services."""
