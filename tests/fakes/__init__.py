"""Fakes of outside services for tests: a Telegram Bot API server."""
