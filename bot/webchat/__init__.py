"""The local web chat: a channel like the others, served by the project's aiohttp server."""
