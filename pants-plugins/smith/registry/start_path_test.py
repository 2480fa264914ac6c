"""What a small `smith push` / `smith pull` imports before its first request (issue 20): for a
small image the interpreter's start-up is most of the wall time, so modules the path does not
need stay unloaded. Checked on a real push and pull against a local docker-registry, started the
way dist/smith starts (Debian's python3 -I -S), with -X importtime listing every module loaded."""
import os
import subprocess

import pytest

import smith
from smith.registry import push_cli, signing
from smith.testutil.debian import tool_env
from smith.testutil.local_registry import LocalRegistry
from smith.testutil.sample_images import simple_layout

PYTHON = "/usr/bin/python3"  # the interpreter dist/smith runs on
# typing: ~11 M instructions (it compiles regexes); ssl: ~6 M, and only https needs it; shutil
# (bz2, lzma, fnmatch): argparse's help formatter imports it at every add_argument.
NOT_LOADED = ("typing", "ssl", "shutil")


def smith_imports(args, home):
    """Run `smith ARGS` as dist/smith does; its exit status, stderr and the modules it loaded."""
    boot = "s=__import__('sys');s.path[0]=%r;__import__('smith.__main__')" % os.path.dirname(
        os.path.dirname(os.path.abspath(smith.__file__)))
    p = subprocess.run([PYTHON, "-I", "-S", "-X", "importtime", "-c", boot, *args],
                       env=tool_env(HOME=home, SMITH_BLOB_CACHE=os.path.join(home, "blobs.json")),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    lines = p.stderr.splitlines()
    modules = {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}
    # -X importtime did list the imports (not smith.__main__ itself: push and pull end the
    # process from inside it, without the interpreter's teardown; see smith.cli.QUICK_EXIT)
    assert "smith.cli" in modules and "smith.registry.options" in modules, sorted(modules)
    other = "\n".join(line for line in lines if not line.startswith("import time:"))
    return p.returncode, other, modules


def test_push_and_pull_leave_unneeded_modules_unloaded(tmp_path):
    if not os.access(PYTHON, os.X_OK):
        pytest.skip("no %s" % PYTHON)
    reg = LocalRegistry(str(tmp_path / "registry"))
    try:
        desc = simple_layout(str(tmp_path / "src"), salt="start-path")
        status, err, pushed = smith_imports(
            ["push", str(tmp_path / "src"), reg.host + "/start/path:v1"], str(tmp_path))
        assert status == 0 and "2 blobs uploaded" in err, err
        status, err, pulled = smith_imports(
            ["pull", "%s/start/path@%s" % (reg.host, desc["digest"]), str(tmp_path / "out")],
            str(tmp_path))
        assert status == 0, err
    finally:
        reg.stop()
    assert os.path.isfile(tmp_path / "out" / "index.json")
    assert "smith.registry.push" in pushed and "smith.registry.pull" in pulled
    assert [m for m in NOT_LOADED if m in pushed] == []
    assert [m for m in NOT_LOADED if m in pulled] == []
    # Signing is loaded only with --sign-key / --verify-key.
    assert "smith.registry.signing" not in pushed | pulled


def test_push_help_names_the_passphrase_variable(capsys):
    # push_cli spells the variable out so that building its parser needs no smith.registry.signing.
    with pytest.raises(SystemExit):
        push_cli.main(["--help"])
    assert "$" + signing.PASSWORD_ENV in " ".join(capsys.readouterr().out.split())
