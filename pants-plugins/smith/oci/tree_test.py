import os

import pytest

from smith.errors import SmithError
from smith.oci import image, tree


def test_excludes_match_image_paths_and_drop_whole_directories():
    ex = tree.Excluder(["/usr/share/doc", "*.pyc", "etc/cron.*"])
    assert ex.excluded("usr/share/doc")
    assert ex.excluded("usr/share/doc/pkg/copyright")  # under an excluded directory
    assert not ex.excluded("usr/share/docs")  # a glob is not a prefix match
    assert ex.excluded("usr/lib/python3/x/__pycache__/m.cpython-39.pyc")  # "*" spans "/"
    assert ex.excluded("etc/cron.daily/job")  # relative globs are anchored at the root
    assert not ex.excluded("var/etc/cron.daily")
    assert not tree.Excluder([]).excluded("anything")


def test_read_dir_places_content_under_prefix_and_groups_hardlinks(tmp_path):
    (tmp_path / "cfg" / "sub").mkdir(parents=True)
    (tmp_path / "cfg" / "sub" / "a").write_text("a")
    os.link(tmp_path / "cfg" / "sub" / "a", tmp_path / "cfg" / "b")
    os.symlink("sub/a", tmp_path / "cfg" / "c")
    entries = {e.path: e for e in tree.read_dir(str(tmp_path / "cfg"), "etc/app")}
    assert sorted(entries) == ["etc/app", "etc/app/b", "etc/app/c", "etc/app/sub",
                               "etc/app/sub/a"]
    assert entries["etc/app/b"].link_group == entries["etc/app/sub/a"].link_group is not None
    assert entries["etc/app/c"].kind == tree.SYMLINK and entries["etc/app/c"].target == "sub/a"
    single = tree.read_dir(str(tmp_path / "cfg" / "sub" / "a"), "etc/one.conf")
    assert [(e.path, e.kind, e.size) for e in single] == [("etc/one.conf", tree.FILE, 1)]
    with pytest.raises(SmithError, match=r"cannot read .*missing"):
        tree.read_dir(str(tmp_path / "missing"), "")


def test_merge_rejects_symlinks_with_different_targets(tmp_path):
    a = [tree.Entry("lib", tree.SYMLINK, 0o777, "one.tar", target="usr/lib")]
    b = [tree.Entry("lib", tree.SYMLINK, 0o777, "two.tar", target="usr/lib64")]
    assert len(tree.merge([a, a])) == 1
    with pytest.raises(SmithError, match=r"/lib differs between one.tar \(symlink.*two.tar"):
        tree.merge([a, b])


def test_config_inheritance_follows_docker_rules():
    base = {"config": {"Env": ["PATH=/bin", "A=1"], "Entrypoint": ["/old"], "Cmd": ["x"],
                       "User": "1000", "WorkingDir": "/srv", "Volumes": {"/data": {}}}}
    c = image.image_config({"entrypoint": ["/new"], "env": {"A": "2"}}, base, 10, 10, [], [])
    cfg = c["config"]
    assert cfg["Entrypoint"] == ["/new"] and "Cmd" not in cfg  # new entrypoint resets Cmd
    assert cfg["Env"] == ["PATH=/bin", "A=2"]
    assert cfg["User"] == "1000" and cfg["WorkingDir"] == "/srv"
    assert sorted(cfg["Volumes"]) == ["/data", "/read", "/run", "/write"]
    own = image.image_config({"user": "app", "volumes": [], "workdir": "/w",
                              "created": "2024-01-01T00:00:00Z"}, None, 10, 20, ["sha256:x"], [])
    assert own["config"]["User"] == "app" and "Volumes" not in own["config"]
    assert own["config"]["Env"] == [image.DEFAULT_PATH]
    assert own["created"] == "2024-01-01T00:00:00Z"
    assert image.image_config({}, None, 10, 20, [], [])["config"]["User"] == "10:20"
