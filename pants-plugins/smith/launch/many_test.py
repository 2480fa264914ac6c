"""Many containers of one image at once: one store, layers unpacked once, one id range each."""
import os
import selectors
import subprocess
import time
from typing import Dict, List

import pytest

from smith.oci.image_source import open_image
from smith.testutil.launch import (busybox_image, launch_cmd, leftovers, new_store, remove_store,
                                  smith_env)
from smith.testutil.debian import require_tools

COUNT = 50
IDENTITY = ["0", "0", "4294967295"]


@pytest.fixture
def store():
    path = new_store()
    yield path
    remove_store(path)


def _read_lines(procs: List[subprocess.Popen], deadline: float) -> Dict[int, bytes]:
    """The first stdout line of each process (waiting for all of them together)."""
    sel = selectors.DefaultSelector()
    for i, p in enumerate(procs):
        sel.register(p.stdout, selectors.EVENT_READ, i)
    got: Dict[int, bytes] = {}
    buf: Dict[int, bytes] = {}
    while len(got) < len(procs) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            i = key.data
            chunk = os.read(key.fileobj.fileno(), 4096)
            buf[i] = buf.get(i, b"") + chunk
            if b"\n" in buf[i] or not chunk:
                got[i] = buf[i].split(b"\n")[0]
                sel.unregister(key.fileobj)
    sel.close()
    return got


def _children() -> Dict[int, List[int]]:
    kids: Dict[int, List[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(name))
    return kids


def _container_uid_map(launcher: int, kids: Dict[int, List[int]]) -> List[str]:
    """uid_map, read from the host, of the first descendant of `launcher` in a user namespace."""
    todo = list(kids.get(launcher, []))
    while todo:
        pid = todo.pop(0)
        try:
            with open("/proc/%d/uid_map" % pid) as f:
                fields = f.read().split()
        except OSError:
            continue
        if fields != IDENTITY:
            return fields
        todo += kids.get(pid, [])
    return []


def _du(path: str) -> int:
    seen, total = set(), 0
    for top, dirs, files in os.walk(path):
        for n in files:
            st = os.lstat(os.path.join(top, n))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_blocks * 512
    return total


def test_fifty_containers_share_layers_and_get_distinct_ranges(store):
    require_tools("runc", "busybox")
    layout = busybox_image()
    image = open_image(layout)
    argv = launch_cmd("run", "--layout", layout, "--store", store, "--verbose", "--", "sh", "-c",
                      "echo started; read go; echo done $go")
    procs = []
    start = time.monotonic()
    try:
        for _ in range(COUNT):
            procs.append(subprocess.Popen(argv, env=smith_env(), stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        first = _read_lines(procs, time.monotonic() + 150)
        all_up = time.monotonic() - start
        assert sorted(first) == list(range(COUNT))
        assert set(first.values()) == {b"started"}
        # All 50 are running now (each waits on its stdin): look at them from the host.
        kids = _children()
        maps = [_container_uid_map(p.pid, kids) for p in procs]
        assert all(len(m) == 3 and m[0] == "0" and m[2] == "65536" for m in maps), maps
        bases = sorted(int(m[1]) for m in maps)
        assert len(set(bases)) == COUNT
        assert all(b - a >= 65536 for a, b in zip(bases, bases[1:]))
        assert len(os.listdir(os.path.join(store, "c"))) == COUNT
        # The store holds each layer once: about one image, not fifty.
        layers_bytes = _du(os.path.join(store, "layers"))
        image_bytes = sum(l.size for l in image.layers)
        for p in procs:
            p.stdin.write(b"go\n")
            p.stdin.close()
        results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for code, out, err in results:
        assert (code, out) == (0, b"done go\n"), err
    unpacked = sum(err.count(b"unpacked layer") for _, _, err in results)
    reused = sum(err.count(b"reusing layer") for _, _, err in results)
    assert (unpacked, reused) == (len(image.layers), len(image.layers) * (COUNT - 1))
    assert layers_bytes < 3 * 1024 * 1024  # busybox (1.9 MB) once, plus the skeleton
    assert leftovers(store) == []
    print("\n%d containers up in %.1f s; store %d KiB for an image of %d KiB compressed"
          % (COUNT, all_up, layers_bytes // 1024, image_bytes // 1024))


def test_write_of_one_container_is_invisible_to_another(store):
    require_tools("runc", "busybox")
    layout = busybox_image()
    env = smith_env()
    a = subprocess.Popen(launch_cmd("run", "--layout", layout, "--store", store, "--", "sh", "-c",
                                    "echo secret > /write/a-file && echo written; read x"),
                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert a.stdout.readline() == b"written\n"
        b = subprocess.run(launch_cmd("run", "--layout", layout, "--store", store, "--", "sh", "-c",
                                      "ls -A /write; cat /write/a-file; echo x > /x"),
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        a.stdin.write(b"\n")
        a.stdin.close()
        assert a.wait(timeout=60) == 0
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    assert b.stdout == b""  # B's /write is empty
    assert b"cat: can't open '/write/a-file': No such file or directory" in b.stderr
    assert b"/x: Read-only file system" in b.stderr
    assert leftovers(store) == []  # A's /write went with A
