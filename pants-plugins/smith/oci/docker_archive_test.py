import json
import os
import shutil
import subprocess
import tarfile
import tempfile

from smith.oci import docker_archive, image_cli, layer_cli, unpack
from smith.testutil.debian import require_tools, tool_env


def build(tmp_path, name, tag="latest"):
    root = tmp_path / "root"
    if not root.exists():
        (root / "app").mkdir(parents=True)
        (root / "app" / "run").write_text("#!/app/run\n")
        os.chmod(root / "app" / "run", 0o700)
        os.symlink("run", root / "app" / "alias")
        assert layer_cli.main(["--output", str(tmp_path / "l"), "--dir", "/=%s" % root]) == 0
        (tmp_path / "c.json").write_text(json.dumps({"entrypoint": ["/app/run"],
                                                     "labels": {"k": "v"}}))
    archive = tmp_path / (name + ".tar")
    assert image_cli.main(["--output", str(tmp_path / name), "--tag", tag,
                           "--config", str(tmp_path / "c.json"), "--layer", str(tmp_path / "l"),
                           "--docker-archive", str(archive)]) == 0
    return archive


def test_docker_archive_is_deterministic_and_round_trips(tmp_path):
    a = build(tmp_path, "a")
    b = build(tmp_path, "b")
    assert a.read_bytes() == b.read_bytes()
    listing = subprocess.run(["tar", "--numeric-owner", "-tvf", str(a)], env=tool_env(),
                             stdout=subprocess.PIPE, check=True, text=True).stdout
    lines = listing.splitlines()
    assert len(lines) == 4  # config, skeleton layer, app layer, manifest.json
    assert all(l.startswith("-rw-r--r-- 0/0 ") and " 1970-01-01 00:00 " in l for l in lines)
    with tarfile.open(a) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["localhost/smith:latest"]
    out = tmp_path / "u"
    cfg = unpack.unpack_image(str(a), str(out))
    assert cfg["Entrypoint"] == ["/app/run"] and cfg["Labels"] == {"k": "v"}
    assert (out / "app" / "run").read_text() == "#!/app/run\n"
    assert os.readlink(out / "app" / "alias") == "run"
    assert docker_archive.repo_tag("example.com/app:1.0") == "example.com/app:1.0"


def test_podman_loads_the_archive(tmp_path):
    require_tools("podman")
    archive = build(tmp_path, "img", tag="smith-test/app:1.0")
    runroot = tempfile.mkdtemp(prefix="/tmp/smith-pm-")  # podman wants it < 50 chars
    try:
        _load_and_inspect(tmp_path, archive, runroot)
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def _load_and_inspect(tmp_path, archive, runroot):
    store = ["--root", str(tmp_path / "storage"), "--runroot", runroot,
             "--storage-driver", "vfs"]
    env = tool_env(HOME=str(tmp_path))
    loaded = subprocess.run(["podman", *store, "load", "-i", str(archive)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert loaded.returncode == 0, loaded.stdout
    assert "smith-test/app:1.0" in loaded.stdout
    inspect = subprocess.run(["podman", *store, "image", "inspect", "smith-test/app:1.0"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert inspect.returncode == 0, inspect.stderr
    info = json.loads(inspect.stdout)[0]
    assert info["Config"]["Entrypoint"] == ["/app/run"]
    assert info["Config"]["User"] == "10:10"
    assert len(info["RootFS"]["Layers"]) == 2
