"""Errors meant for a user: the message says what is wrong, where, and what to do."""


class SmithError(Exception):
    """Printed as `smith COMMAND: error: MESSAGE`; the command exits with status 1."""


def escaped(text: str, keep: str = "") -> str:
    """`text` with each non-printable character not in `keep` written as its Python escape
    (\\x1b, \\r, \\u202e ...): what a stranger wrote, safe to show on a terminal."""
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def for_terminal(message: object) -> str:
    """An error message as printed: every control character but newline and tab (ESC and so
    terminal escapes, CR, BEL, C1, bidi overrides) written as its Python escape. Messages quote
    strangers' text (archive entry names, registry answers, bundle paths, an image's programs);
    escaping where they are printed covers them all."""
    text = str(message)
    return text if text.isprintable() else escaped(text, "\n\t")
