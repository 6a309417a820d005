"""Persistence: SQLModel tables, the engine/session factory, repositories and migrations.

Nothing here imports a chat platform; repositories never commit (the caller owns the
transaction).
"""
