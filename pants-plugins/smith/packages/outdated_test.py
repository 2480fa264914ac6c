"""smith outdated against the test repositories: an old pin is reported with the newer
version, --check fails, an up-to-date lock passes, a pin whose file is gone is flagged."""
import json
import os
import subprocess
import sys

import pytest

import smith
from smith.packages import lock_cli, outdated_cli
from smith.testutil import fixture_repos
from smith.testutil.debian import tool_env


@pytest.fixture(scope="module")
def deb():
    root = fixture_repos.deb_repo()
    with fixture_repos.serve(os.path.join(root, "repo")) as url:
        yield root, url


def make_lock(tmp_path, raw, name, *packages):
    (tmp_path / "repo.json").write_text(json.dumps(raw))
    out = tmp_path / name
    assert lock_cli.main(["--repo", str(tmp_path / "repo.json"), "--output", str(out)] + list(packages)) == 0
    return str(out)


def test_deb_outdated(tmp_path, deb, capsys):
    root, url = deb
    raw = {"kind": "deb", "url": url, "suites": ["stable"], "keyring": os.path.join(root, "keyring.gpg")}
    old = make_lock(tmp_path, raw, "old.json", "libgreet1 (<< 1.0)")
    new = make_lock(tmp_path, raw, "new.json", "hello")
    keyring = ["--keyring", os.path.join(root, "keyring.gpg")]
    capsys.readouterr()
    report = tmp_path / "report.json"
    assert outdated_cli.main(keyring + ["--json", str(report), old, new]) == 0
    out = capsys.readouterr().out
    assert "%s: libgreet1 0.9-1 -> 1.1-1\n" % old in out
    assert "%s: up to date\n" % new in out
    assert json.loads(report.read_text()) == [
        {"lock": old, "name": "libgreet1", "architecture": "amd64", "locked": "0.9-1", "available": "1.1-1", "gone": False}]
    assert outdated_cli.main(keyring + ["--check", new]) == 0
    assert outdated_cli.main(keyring + ["--check", old]) == 3
    # A pin whose file no longer is in the repository is flagged even without a newer version.
    lock = json.loads(open(new).read())
    lock["packages"][0]["sha256"] = "0" * 64
    with open(new, "w") as f:
        json.dump(lock, f)
    capsys.readouterr()
    assert outdated_cli.main(keyring + ["--check", new]) == 3
    assert "gone from the repository" in capsys.readouterr().out


def test_rpm_outdated_cli(tmp_path):
    root = fixture_repos.rpm_repo()
    with fixture_repos.serve(os.path.join(root, "repo")) as url:
        lock = make_lock(tmp_path, {"kind": "rpm", "url": url}, "r.json", "librgreet < 1.0")
        env = tool_env(PYTHONPATH=os.path.dirname(os.path.dirname(smith.__file__)))
        proc = subprocess.run([sys.executable, "-m", "smith", "outdated", "--check", lock], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 3
    assert proc.stdout == "%s: librgreet 0.9-1 -> 1.2-1\n" % lock
    assert "1 pins are outdated" in proc.stderr
