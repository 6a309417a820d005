"""Start-up and platforms: settings, the runtime, the aiohttp server, the CLI, channel adapters."""
