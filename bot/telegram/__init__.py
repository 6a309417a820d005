"""The Telegram channel on python-telegram-bot 22 (PTB parses and dispatches; state is ours)."""
