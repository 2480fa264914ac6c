"""smith.yaml -> targets: the README examples, every field, and the errors that name the field."""
import pytest

from smith.errors import SmithError
from smith.plugin.smith_yaml_spec import generate, load

CAT = """
package: coreutils
paths:
- /usr/bin/cat
cmd:
- /usr/bin/cat
- /read/data
"""


def gen(text, **kw):
    return generate(load(text, "smith.yaml"), "smith.yaml", lambda n: "d:x#" + n,
                    kw.get("repository", ":bookworm"), "x", kw.get("lockfile"))


def test_package_build_maps_to_packages_binary_layer_image():
    targets = {g.name: g for g in gen(CAT)}
    assert [targets[n].alias for n in ("packages", "binary", "layer", "image")] == \
        ["smith_packages", "smith_binary", "smith_layer", "smith_image"]
    assert targets["packages"].fields == {"repository": ":bookworm", "packages": ["coreutils"],
                                          "resolve": "x"}
    assert targets["binary"].fields["path"] == "/usr/bin/cat"
    assert targets["binary"].fields["root"] == ["d:x#packages"]
    assert targets["binary"].fields["paths"] == []  # the program itself is not repeated
    assert targets["layer"].fields["dependencies"] == ["d:x#binary"]
    assert targets["image"].fields == {"layers": ["d:x#layer"], "cmd": ["/usr/bin/cat", "/read/data"],
                                       "user": "smith:10:10"}


def test_oci_maps_to_smith_minimize_with_every_supported_field():
    [g] = gen("""
type: oci
package: images/redis.tar
paths: [/etc/redis/*]
excludes: [/usr/share/doc/*]
nss: true
user: redis
entrypoint: [redis-server]
cmd: [/read/redis.conf]
dir: /write
env: [A=1, B=x=y]
labels: {org.example: yes}
ports: [6379]
""")
    assert g.alias == "smith_minimize" and g.name == "image"
    assert g.fields == {"image": "images/redis.tar", "paths": ["/etc/redis/*"],
                        "excludes": ["/usr/share/doc/*"], "nss": True, "user": "redis:10:10",
                        "entrypoint": ["redis-server"], "cmd": ["/read/redis.conf"],
                        "workdir": "/write", "env": {"A": "1", "B": "x=y"},
                        "labels": {"org.example": "True"}, "exposed_ports": ["6379"]}


def test_root_runs_as_uid_0():
    image = {g.name: g for g in gen(CAT + "root: true\n")}["image"]
    assert image.fields["user"] == "root:0:0"


@pytest.mark.parametrize("text,message", [
    (CAT + "parent: base\n", "field `parent`: layering on a parent image is not supported"),
    (CAT + "groups: [adm]\n", "field `groups`"),
    (CAT + "mounts: [/data]\n", "field `mounts`"),
    (CAT + "colour: red\n", "unknown field `colour`"),
    ("paths: [/x]\n", "field `package` is required"),
    ("package: coreutils\ncmd: [cat]\n", "needs the program as an absolute path"),
    ("type: docker\npackage: x\n", "field `type` 'docker' is not supported"),
    (CAT + "nss: maybe\n", "field `nss` must be true or false"),
    (CAT + "user: 'Bad User'\n", "field `user` 'Bad User'"),
    (CAT + "root: true\nuser: app\n", "contradict"),
    (CAT + "env: [NOEQUALS]\n", "field `env`: 'NOEQUALS' is not NAME=VALUE"),
    ("- a\n- b\n", "must be a YAML mapping"),
    ("package: [unclosed\n", "is not valid YAML"),
])
def test_errors_name_the_field(text, message):
    with pytest.raises(SmithError, match=None) as e:
        gen(text)
    assert message in str(e.value) and "smith.yaml" in str(e.value)
