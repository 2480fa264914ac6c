import pytest

from smith.errors import SmithError
from smith.launch import bundle

IMAGE = {"Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "Env": ["PATH=/bin", "A=1"],
         "WorkingDir": "/srv", "User": "10:10"}


def test_args_replace_cmd_and_whole_command_replaces_entrypoint():
    assert bundle.command(IMAGE, bundle.Options(args=[])) == ["/bin/app", "--serve"]
    assert bundle.command(IMAGE, bundle.Options(args=["--version"])) == ["/bin/app", "--version"]
    assert bundle.command(IMAGE, bundle.Options(args=["/bin/sh"], whole_command=True)) == ["/bin/sh"]
    with pytest.raises(SmithError, match="no Entrypoint or Cmd"):
        bundle.command({}, bundle.Options(args=[]))


def test_extra_env_overrides_the_image():
    assert bundle.environment(IMAGE, ["A=2", "B=x=y"]) == ["PATH=/bin", "A=2", "B=x=y"]
    assert bundle.environment({}, [])[0].startswith("PATH=/usr/local/sbin")
    with pytest.raises(SmithError, match="'oops' is not KEY=VALUE"):
        bundle.environment(IMAGE, ["oops"])


def test_user_ids_from_the_image_files(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0::/:/bin/false\napp:x:10:20::/:/bin/false\n")
    (etc / "group").write_text("root:x:0:\nstaff:x:50:\n")
    root = str(tmp_path)
    assert bundle.user_ids("", root) == (0, 0)
    assert bundle.user_ids("10", root) == (10, 20)       # the passwd group
    assert bundle.user_ids("11", root) == (11, 0)        # not listed: gid 0, as the spec says
    assert bundle.user_ids("app", root) == (10, 20)
    assert bundle.user_ids("app:staff", root) == (10, 50)
    assert bundle.user_ids("10:7", root) == (10, 7)
    with pytest.raises(SmithError, match="'nobody' is not in its /etc/passwd"):
        bundle.user_ids("nobody", root)


def test_passwd_symlinked_out_of_the_image_is_not_read(tmp_path):
    (tmp_path / "etc").symlink_to("/etc")  # would read the host's /etc/passwd
    with pytest.raises(SmithError, match="not in its /etc/passwd"):
        bundle.user_ids("root", str(tmp_path))


def test_config_maps_ids_and_mounts():
    opts = bundle.Options(args=[], read_dir="/r", network="host")
    cfg = bundle.config(IMAGE, opts, 10, 10, "/w", 200000, 65536)
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 200000, "size": 65536}]
    assert cfg["root"] == {"path": "root", "readonly": True}
    assert cfg["process"]["user"] == {"uid": 10, "gid": 10}
    assert cfg["process"]["cwd"] == "/srv"
    assert "network" not in [n["type"] for n in cfg["linux"]["namespaces"]]
    dests = {m["destination"]: m for m in cfg["mounts"]}
    assert dests["/read"]["source"] == "/r" and "ro" in dests["/read"]["options"]
    assert dests["/write"]["source"] == "/w"
    assert "uid=10" in dests["/run"]["options"]
    with pytest.raises(SmithError, match="--ids-per-container"):
        bundle.config(IMAGE, opts, 70000, 10, "/w", 200000, 65536)
