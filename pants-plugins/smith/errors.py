"""Errors meant for a user: the message says what is wrong, where, and what to do."""


class SmithError(Exception):
    """Printed as `smith COMMAND: error: MESSAGE`; the command exits with status 1."""
