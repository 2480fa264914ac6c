"""Error messages are printed with strangers' control characters escaped (terminal escapes)."""
import os
import subprocess
import sys

import pytest

from smith.errors import for_terminal

PLUGINS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTILE = "/nonexistent\x1b]0;pwned\x07\x1b[2J\r\x9b1m\u202egnp.exe"


def test_for_terminal_escapes_control_characters_but_keeps_lines_and_text():
    assert for_terminal("plain, caf\u00e9 \u2713") == "plain, caf\u00e9 \u2713"
    assert for_terminal("two\nlines\tand a tab") == "two\nlines\tand a tab"
    assert for_terminal(HOSTILE) == ("/nonexistent\\x1b]0;pwned\\x07\\x1b[2J\\r\\x9b1m\\u202egnp.exe")
    assert for_terminal(for_terminal(HOSTILE)) == for_terminal(HOSTILE)
    assert for_terminal(OSError(2, "No such file", "x\x1by")).endswith("'x\\x1by'")


@pytest.mark.parametrize("module, args", [
    ("smith", ["push", HOSTILE + ":latest", "127.0.0.1:1/app:v1"]),
    ("smith.runtime", ["--root", "/nonexistent-root", "create", "--bundle", HOSTILE, "c1"]),
    ("smith.crashcart", ["--runtime-root", HOSTILE, "c1"]),
], ids=["smith", "smith-runtime", "crashcart"])
def test_cli_errors_print_no_control_characters(module, args):
    p = subprocess.run([sys.executable, "-m", module] + args, cwd=PLUGINS, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode != 0
    assert "pwned" in p.stderr, p.stderr  # the message did quote the hostile name...
    assert not any(c in p.stderr for c in "\x1b\x07\r\x9b\u202e"), repr(p.stderr)  # ...escaped
