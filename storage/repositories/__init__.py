"""Queries and writes, one module per aggregate. They flush but never commit."""
