"""`smith.launch structure`: checks of hand-made OCI layouts (layers written with tarfile here,
so owners, setuid bits, whiteouts and usrmerge links are exactly what each test needs)."""
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile

import pytest

from smith.launch import structure
from smith.launch.service_spec import SpecError
from smith.testutil.launch import launch_cmd, smith_env


def _blob(layout, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def _tar(entries) -> bytes:
    """entries: (name, kind, uid, gid, mode, content or link target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, uid, gid, mode, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.uid, ti.gid, ti.mode = uid, gid, mode
            data = None
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
            else:
                data = extra.encode()
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def make_layout(path, layers, config=None) -> str:
    os.makedirs(os.path.join(path, "blobs", "sha256"))
    descs, diff_ids = [], []
    for entries in layers:
        plain = _tar(entries)
        diff_ids.append("sha256:" + hashlib.sha256(plain).hexdigest())
        descs.append(dict(_blob(path, gzip.compress(plain, mtime=0)),
                          mediaType="application/vnd.oci.image.layer.v1.tar+gzip"))
    cfg = {"architecture": "amd64", "os": "linux", "config": config or {},
           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cdesc = dict(_blob(path, json.dumps(cfg).encode()), mediaType="application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": cdesc, "layers": descs}
    mdesc = dict(_blob(path, json.dumps(manifest).encode()), mediaType=manifest["mediaType"],
                 annotations={"org.opencontainers.image.ref.name": "latest"})
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [mdesc]}, f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return str(path) + ":latest"


CONFIG = {"Entrypoint": ["/usr/bin/app"], "Cmd": ["/read/app.conf"], "User": "10:10",
          "ExposedPorts": {"8080/tcp": {}}, "Volumes": {"/write": {}, "/run": {}},
          "Labels": {"org.opencontainers.image.title": "app"}, "Env": ["PATH=/usr/bin", "LANG=C"]}


@pytest.fixture
def clean(tmp_path):
    return make_layout(tmp_path / "clean", [[
        ("usr", "dir", 10, 10, 0o755, None), ("usr/bin", "dir", 10, 10, 0o755, None),
        ("usr/bin/app", "file", 10, 10, 0o755, "#app"), ("bin", "symlink", 10, 10, 0o777, "usr/bin"),
        ("etc", "dir", 10, 10, 0o755, None), ("etc/passwd", "file", 10, 10, 0o644, "smith:x:10:10::/:/nologin\n"),
    ]], CONFIG)


@pytest.fixture
def messy(tmp_path):
    """usrmerge with a shell, a root-owned setuid file, a world-writable one, and a setuid
    file a later layer whites out (it is not in the image, so not reported)."""
    return make_layout(tmp_path / "messy", [
        [("usr", "dir", 0, 0, 0o755, None), ("usr/bin", "dir", 0, 0, 0o755, None),
         ("usr/bin/sh", "file", 0, 0, 0o755, "#sh"), ("bin", "symlink", 0, 0, 0o777, "usr/bin"),
         ("usr/bin/su", "file", 0, 0, 0o4755, "#su"), ("usr/bin/gone", "file", 0, 0, 0o4755, "#x"),
         ("tmp", "dir", 0, 0, 0o1777, None), ("escape", "symlink", 0, 0, 0o777, "../../../..")],
        [("usr/bin/.wh.gone", "file", 0, 0, 0o644, ""), ("usr/bin/app", "file", 10, 10, 0o755, "#app")],
    ], CONFIG)


def run(spec):
    return structure.check(structure.validate(spec))


def test_clean_image_passes_every_rule(clean):
    problems, done = run({"layout": clean, "paths_present": ["/usr/bin/app", "/bin/app", "/bin"],
                          "paths_absent": ["/bin/sh", "/usr/bin/busybox"], "no_shell": True,
                          "file_owner": "image", "no_setuid": True, "no_world_writable": True,
                          "config": {"entrypoint": ["/usr/bin/app"], "cmd": ["/read/app.conf"],
                                     "user": "10:10", "exposed_ports": ["8080/tcp"],
                                     "volumes": ["/run", "/write"], "env": {"LANG": "C"},
                                     "labels": {"org.opencontainers.image.title": "app"}}})
    assert problems == []
    assert "no shell" in done and "6 entries owned by 10:10" in done


def test_messy_image_fails_each_rule(messy):
    problems, _ = run({"layout": messy, "paths_present": ["/usr/bin/gone"], "paths_absent": ["/bin/sh"],
                       "no_shell": True, "file_owner": "10:10", "no_world_writable": True,
                       "config": {"user": "0:0", "exposed_ports": ["80/tcp"], "labels": {"x": "y"}}})
    text = "\n".join(problems)
    assert "missing paths: /usr/bin/gone" in text  # whited out by the second layer
    assert "paths that must not exist: /bin/sh" in text  # found through /bin -> usr/bin
    assert "no_shell: the image has a shell: /bin/sh, /usr/bin/sh" in text
    assert "file_owner 10:10 (10:10): owned by someone else: /bin (0:0)" in text
    assert "/usr/bin/app" not in text.split("file_owner")[1].split("\n")[0]
    assert "no_setuid: setuid/setgid files: /usr/bin/su (4755)" in text
    assert "/usr/bin/gone (4755)" not in text
    assert "no_world_writable: writable by everyone: /tmp (1777)" in text
    assert 'config user: expected "0:0", the image has "10:10"' in text
    assert "config exposed_ports: expected ['80/tcp'], the image has ['8080/tcp']" in text
    assert 'config labels: expected {"x": "y"}, the image has {"x": null}' in text


def test_links_do_not_leave_the_image(messy):
    # /escape points far above the root: inside the image it is the root itself
    problems, _ = run({"layout": messy, "no_setuid": False,
                       "paths_absent": ["/escape/etc/passwd", "/escape/usr/bin/app"]})
    assert problems == ["paths that must not exist: /escape/usr/bin/app"]


def test_cli_pass_fail_and_errors(clean, tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"name": "clean", "layout": clean, "no_shell": True}))
    proc = subprocess.run(launch_cmd("structure", "--spec", str(spec)), env=smith_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert (proc.returncode, proc.stdout) == (0, b"PASS clean: no shell; no setuid/setgid\n"), proc.stderr
    spec.write_text(json.dumps({"name": "clean", "layout": clean, "paths_present": ["/bin/sh"]}))
    proc = subprocess.run(launch_cmd("structure", "--spec", str(spec)), env=smith_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 1 and b"missing paths: /bin/sh" in proc.stdout
    spec.write_text(json.dumps({"layout": clean, "file_owner": "root"}))
    proc = subprocess.run(launch_cmd("structure", "--spec", str(spec)), env=smith_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 1 and b"file_owner: 'root' is neither" in proc.stderr
    assert b"Traceback" not in proc.stderr


@pytest.mark.parametrize("spec, message", [
    ({"layout": "x", "paths_absent": ["bin/sh"]}, "paths_absent: 'bin/sh' is not an absolute path"),
    ({"layout": "x", "paths_present": ["/a/../b"]}, "paths_present: '/a/../b' is not an absolute path"),
    ({"layout": "x", "config": {"entrypoint": "/app"}}, "config.entrypoint: must be a list of strings"),
    ({"layout": "x", "config": {"ports": []}}, "config: unknown key 'ports'"),
    ({"layout": "x", "no_shell": "yes"}, "no_shell: must be True or False"),
])
def test_spec_errors(spec, message):
    with pytest.raises(SpecError) as e:
        structure.validate(spec)
    assert str(e.value).startswith(message), str(e.value)


def test_the_images_names_are_printed_escaped(tmp_path):
    """A FAIL line lists the image's offending paths: an OSC in a name reached the terminal as
    is before."""
    layout = make_layout(tmp_path / "evil", [[("tmp\x1b]2;owned\x07", "dir", 0, 0, 0o777, None)]], CONFIG)
    out = io.StringIO()
    assert structure.run(structure.validate({"name": "evil", "layout": layout, "no_world_writable": True}),
                         out) == 1
    assert "writable by everyone: /tmp\\x1b]2;owned\\x07 (0777)\n" in out.getvalue(), out.getvalue()
    assert "\x1b" not in out.getvalue()
