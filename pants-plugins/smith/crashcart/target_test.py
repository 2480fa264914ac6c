"""crashcart reads a runtime's state directory as hostile input: no symlink is followed, the JSON
is capped and must have the expected shape; a bad state is an error naming the file, never a
traceback or a read of some other file."""
import json
import os

import pytest

from smith.crashcart.target import MAX_STATE_BYTES, find_target
from smith.errors import SmithError
from smith.linux import start_time


def _state(root, cid, body):
    os.makedirs(os.path.join(root, cid), exist_ok=True)
    with open(os.path.join(root, cid, "state.json"), "w") as f:
        f.write(body if isinstance(body, str) else json.dumps(body))


def _find(tmp_path, cid):
    return find_target(cid, str(tmp_path / "smith"), str(tmp_path / "runc"))


def test_live_container_is_found(tmp_path):
    me = os.getpid()
    _state(str(tmp_path / "smith"), "web", {"pid": me, "pid_start": start_time(me)})
    assert _find(tmp_path, "web").pid == me


def test_symlinked_state_dir_is_refused(tmp_path):
    me = os.getpid()
    _state(str(tmp_path / "elsewhere"), "x", {"pid": me, "pid_start": start_time(me)})
    os.makedirs(tmp_path / "smith")
    os.symlink(tmp_path / "elsewhere" / "x", tmp_path / "smith" / "web")
    with pytest.raises(SmithError, match="symlink or not a directory; refusing"):
        _find(tmp_path, "web")


def test_symlinked_state_file_is_refused(tmp_path):
    me = os.getpid()
    _state(str(tmp_path / "elsewhere"), "x", {"pid": me, "pid_start": start_time(me)})
    os.makedirs(tmp_path / "smith" / "web")
    os.symlink(tmp_path / "elsewhere" / "x" / "state.json", tmp_path / "smith" / "web" / "state.json")
    with pytest.raises(SmithError, match="state.json: a symlink; refusing"):
        _find(tmp_path, "web")


def test_fifo_state_file_does_not_hang(tmp_path):
    os.makedirs(tmp_path / "smith" / "web")
    os.mkfifo(tmp_path / "smith" / "web" / "state.json")
    with pytest.raises(SmithError, match="not a regular file"):
        _find(tmp_path, "web")


@pytest.mark.parametrize("body, message", [
    ("[1, 2]", "expected a JSON object"),
    ("{", "not valid JSON"),
    ("[" * 100000, "nested too deeply"),
    ({"pid": "12; rm -rf /"}, "'pid' must be a process id"),
    ({"pid": -4}, "'pid' must be a process id"),
    ({"pid": True}, "'pid' must be a process id"),
    ({"pid": 1 << 40}, "'pid' must be a process id"),
    ({"pid": 0}, "is not running"),
])
def test_malformed_state_is_an_error_naming_the_file(tmp_path, body, message):
    _state(str(tmp_path / "smith"), "web", body)
    with pytest.raises(SmithError, match=message) as e:
        _find(tmp_path, "web")
    assert "state.json" in str(e.value) or "is not running" in str(e.value)


def test_oversized_state_is_refused(tmp_path):
    _state(str(tmp_path / "smith"), "web", '{"pad": "%s"}' % ("x" * MAX_STATE_BYTES))
    with pytest.raises(SmithError, match="bytes of JSON, more than"):
        _find(tmp_path, "web")
