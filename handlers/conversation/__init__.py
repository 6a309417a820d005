"""Conversations: the router, the report wizard, ticket buttons, registration, /my."""
