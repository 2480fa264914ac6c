"""#! scripts bring their interpreter's closure; `env` finds its command on the image's PATH."""
import os
import shutil
import subprocess

import pytest

from smith.elf.closure import compute_closure
from smith.errors import SmithError
from smith.testutil.debian import tool_env
from smith.testutil.ldso import host_platform

PYTHON3 = shutil.which("python3", path="/usr/bin")


def _script(tmp_path, name: str, text: str) -> str:
    path = str(tmp_path / name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


@pytest.mark.skipif(PYTHON3 is None, reason="the machine has no /usr/bin/python3")
@pytest.mark.parametrize("line", ["#!/usr/bin/env python3", "#!/usr/bin/env -S python3 -u",
                                  "#! /usr/bin/env -S -u BAR FOO=1 python3"])
def test_env_python_script(tmp_path, line: str) -> None:
    script = _script(tmp_path, "run.py", line + "\nprint('hi')\n")
    assert subprocess.run([script], env=tool_env(), stdout=subprocess.PIPE, text=True,
                          timeout=30).stdout == "hi\n"
    result = compute_closure("/", [script], env={"PATH": "/usr/bin"})
    paths = set(result.paths)
    assert {script, "/usr/bin/env", "/usr/bin/python3", os.path.realpath(PYTHON3)} <= paths
    here = [p for p in result.processes if p.platform == host_platform()]  # one per $PLATFORM
    progs = [os.path.realpath(p.main.found.path) for p in here]
    assert progs == [os.path.realpath("/usr/bin/env"), os.path.realpath(PYTHON3)]
    # python3's libraries are what ld.so loads for it
    out = subprocess.run(["/lib64/ld-linux-x86-64.so.2", "--list", os.path.realpath(PYTHON3)],
                         env=tool_env(), stdout=subprocess.PIPE, text=True, check=True).stdout
    theirs = {os.path.realpath(w) for w in out.split() if w.startswith("/")}
    assert {os.path.realpath(o.path) for o in here[1].objects[1:]} == theirs


def test_script_problems_are_named(tmp_path) -> None:
    nobody = _script(tmp_path, "nobody", "#!/usr/bin/env no-such-command-here\n")
    with pytest.raises(SmithError, match=r"no-such-command-here was not found on PATH=/usr/bin"):
        compute_closure("/", [nobody], env={"PATH": "/usr/bin"})
    one_arg = _script(tmp_path, "one-arg", "#!/usr/bin/env FOO=1 python3\n")  # env would run the script
    with pytest.raises(SmithError, match="gives env no command.*use `#!/usr/bin/env -S"):
        compute_closure("/", [one_arg])
    loop = _script(tmp_path, "loop", "#!%s\n" % (tmp_path / "loop"))
    with pytest.raises(SmithError, match="too many levels of #! interpreters"):
        compute_closure("/", [loop])
    text = _script(tmp_path, "text", "just text\n")
    with pytest.raises(SmithError, match="neither an ELF executable nor a #! script"):
        compute_closure("/", [text])
