"""`prune` removes the layers no container uses, and never those of a running container."""
import os
import subprocess

from smith.oci.image_source import open_image
from smith.launch.layer_store import LayerStore
from smith.testutil.launch import busybox_image, launch_cmd, smith_env
from smith.testutil.debian import require_tools


def _stored(store):
    layers = os.path.join(store, "layers", "sha256")
    return {"sha256:" + n for n in os.listdir(layers) if not n.startswith(".") and "." not in n}


def _prune(store):
    proc = subprocess.run(launch_cmd("prune", "--store", store), env=smith_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


def test_prune_keeps_the_layers_of_running_containers(store):
    require_tools("runc", "busybox")
    running = busybox_image()
    finished = busybox_image([({"etc/only-here": "x"}, [])])
    env = smith_env()
    assert subprocess.run(launch_cmd("run", "--layout", finished, "--store", store), env=env,
                          stdout=subprocess.DEVNULL).returncode == 0
    a = subprocess.Popen(launch_cmd("run", "--layout", running, "--store", store, "--", "sh", "-c",
                                    "echo up; read x; busybox echo still works"),
                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert a.stdout.readline() == b"up\n"
        in_use = {l.diff_id for l in open_image(running).layers}
        only_finished = {l.diff_id for l in open_image(finished).layers} - in_use
        assert only_finished and _stored(store) == in_use | only_finished
        out = _prune(store)
        assert _stored(store) == in_use
        assert all(d in out for d in only_finished)
        out, err = a.communicate(b"\n", timeout=60)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    assert (a.returncode, out) == (0, b"still works\n"), err
    _prune(store)
    assert _stored(store) == set()
    # A pruned layer comes back on the next run.
    assert subprocess.run(launch_cmd("run", "--layout", finished, "--store", store), env=env,
                          stdout=subprocess.PIPE).stdout == b"hello from busybox\n"
    assert all(os.path.isdir(LayerStore(store).path(d)) for d in only_finished)
