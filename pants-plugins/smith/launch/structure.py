"""Structure checks of an image, without running anything (`smith.launch structure --spec FILE`).

The image is read with the core's readers: smith.oci.image_source opens the layout (digests
checked) and smith.oci.unpack stacks its layers into a temp tree (whiteouts, caps, no symlink
followed): that tree says which paths exist and what they are. The unpacker does not keep
owners or setuid bits (by design, see smith.untar), so those come from the layers' tar headers:
one stream pass per layer through smith.untar's decompressing, capped readers, the last
header of a path winning (a path a later layer whited out is not in the tree, so it is not
checked). Paths are looked up inside the tree with openat2(RESOLVE_IN_ROOT): `/bin/sh` is found
through a `/bin -> usr/bin` link as the container would see it, and never outside the tree.

Spec (JSON; the `smith_structure_test` target writes it, with the same names):
    {"name": ..., "layout": "IMAGE[:TAG]",
     "paths_present": ["/usr/bin/redis-server"], "paths_absent": ["/bin/sh"], "no_shell": true,
     "file_owner": "image" | "UID:GID" | null, "no_setuid": true, "no_world_writable": true,
     "config": {"entrypoint": [...], "cmd": [...], "user": "10:10", "working_dir": "/",
                "exposed_ports": ["6379/tcp"], "volumes": ["/write"], "labels": {K: V},
                "env": {K: V}}}
`config`: each key given must equal the image's value (`labels` and `env`: those entries must be
there with those values; `exposed_ports` and `volumes`: the same set).
"""
import errno
import json
import os
import stat
import tarfile
import tempfile
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from smith import linux, untar
from smith.errors import SmithError, for_terminal
from smith.launch import bundle
from smith.launch.service_spec import SpecError, _keys, _str, _str_dict, _strs
from smith.oci.image_source import Image, open_image, verify_blob
from smith.registry.platforms import Platform
from smith.oci.unpack import apply_image
from smith.safe_fs import remove_tree
from smith.text import PATH_MAX, printable

SHELLS = ("sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "csh", "tcsh", "fish", "busybox", "toybox")
SHELL_DIRS = ("/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
CONFIG_KEYS = ("entrypoint", "cmd", "user", "working_dir", "exposed_ports", "volumes", "labels", "env")
SPEC_KEYS = ("name", "layout", "paths_present", "paths_absent", "no_shell", "file_owner", "no_setuid",
             "no_world_writable", "config")
SHOW = 20  # offending paths listed per rule


class Meta(NamedTuple):
    uid: int
    gid: int
    mode: int   # permission bits with setuid/setgid/sticky, as the tar header has them
    kind: str   # "file", "dir", "symlink", "hardlink", "other"


class Spec(NamedTuple):
    name: str
    layout: str
    paths_present: List[str]
    paths_absent: List[str]
    no_shell: bool
    file_owner: Optional[str]
    no_setuid: bool
    no_world_writable: bool
    config: Dict[str, Any]


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(field, "must be True or False, not %r" % (value,))
    return value


def _abs_paths(value: Any, field: str) -> List[str]:
    paths = _strs(value, field)
    for p in paths:
        if not p.startswith("/") or "\0" in p or ".." in p.split("/"):
            raise SpecError(field, "%r is not an absolute path inside the image (start with /, no ..)" % p)
    return paths


def parse_owner(value: Any, field: str) -> Optional[str]:
    if value is None:
        return None
    text = _str(value, field)
    uid, sep, gid = text.partition(":")
    if text != "image" and not (sep and uid.isdigit() and gid.isdigit()):
        raise SpecError(field, "%r is neither \"image\" (the image's User) nor UID:GID such as \"10:10\"" % text)
    return text


def validate(d: Any) -> Spec:
    d = _keys(d, "spec", SPEC_KEYS)
    if not isinstance(d.get("layout"), str) or not d["layout"]:
        raise SpecError("layout", "the image to check (IMAGE[:TAG]) is required")
    config = _keys(d.get("config") or {}, "config", CONFIG_KEYS)
    for key in ("entrypoint", "cmd"):
        if key in config and config[key] is not None:
            _strs(config[key], "config." + key)
    for key in ("exposed_ports", "volumes"):
        if key in config:
            _strs(config[key], "config." + key)
    for key in ("labels", "env"):
        if key in config:
            _str_dict(config[key], "config." + key)
    for key in ("user", "working_dir"):
        if key in config:
            _str(config[key], "config." + key)
    return Spec(
        name=_str(d.get("name", d["layout"]), "name"),
        layout=d["layout"],
        paths_present=_abs_paths(d.get("paths_present", []), "paths_present"),
        paths_absent=_abs_paths(d.get("paths_absent", []), "paths_absent"),
        no_shell=_bool(d.get("no_shell", False), "no_shell"),
        file_owner=parse_owner(d.get("file_owner"), "file_owner"),
        no_setuid=_bool(d.get("no_setuid", True), "no_setuid"),
        no_world_writable=_bool(d.get("no_world_writable", False), "no_world_writable"),
        config=config,
    )


# -- reading the image ----------------------------------------------------------------------------
def _norm(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def headers(img: Image, limits: untar.Limits) -> Dict[str, Meta]:
    """Owner, mode and kind of every path, as the last layer that wrote it says."""
    meta: Dict[str, Meta] = {}
    budget = untar.Budget(limits)
    for lay in img.layers:
        what = "layer %s" % (lay.digest or lay.name)
        if lay.digest is not None:
            verify_blob(img.store, lay.descriptor(), what)
        with img.store.open(lay.name) as raw:
            packed = untar.CountingReader(raw, what, limits)
            try:
                plain = untar.CountingReader(untar.decompressed(packed, what), what, limits, budget,
                                             compressed=packed)
                with tarfile.open(fileobj=plain, mode="r|") as tf:
                    count = 0
                    for m in tf:
                        tf.members = []
                        count += 1
                        if count > limits.entries:
                            raise SmithError("%s: more than %d entries; %s" % (
                                what, limits.entries, limits.how_to_raise("entries")))
                        base = m.name.rstrip("/").rsplit("/", 1)[-1]
                        if base.startswith(untar.WHITEOUT):
                            continue
                        kind = ("file" if m.isreg() else "dir" if m.isdir() else "symlink" if m.issym()
                                else "hardlink" if m.islnk() else "other")
                        meta[_norm(m.name)] = Meta(m.uid, m.gid, m.mode & 0o7777, kind)
            except untar.STREAM_ERRORS as e:
                raise SmithError("%s: not a readable layer (%s)" % (what, e))
    return meta


class Tree:
    """The unpacked image; lookups resolve symlinks as the container would, inside the tree."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    def lstat(self, path: str) -> Optional[os.stat_result]:
        """lstat of `path` in the image, its parent directories resolved inside the tree."""
        parent, base = os.path.split(path.rstrip("/") or "/")
        flags = getattr(os, "O_PATH", 0o10000000) | os.O_DIRECTORY | os.O_CLOEXEC
        try:
            pfd = linux.openat2(self.fd, parent.lstrip("/") or ".", flags,
                                linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise
        try:
            if not base:
                return os.fstat(pfd)
            return os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        finally:
            os.close(pfd)

    def walk(self) -> List[str]:
        """Every path of the image (as /a/b), without following symlinks."""
        out = []
        for top, dirs, files in os.walk(self.root):
            rel = os.path.relpath(top, self.root)
            base = "/" if rel == "." else "/" + rel
            for n in dirs + files:
                out.append(base.rstrip("/") + "/" + n)
        return sorted(out)


# -- the checks -----------------------------------------------------------------------------------
def _listing(paths: List[str]) -> str:
    shown = ", ".join(printable(p, PATH_MAX) for p in paths[:SHOW])  # the image's names
    return shown + (" and %d more" % (len(paths) - SHOW) if len(paths) > SHOW else "")


def _config_problems(runtime: Dict[str, Any], raw: Dict[str, Any], want: Dict[str, Any]) -> List[str]:
    have = {
        "entrypoint": runtime.get("Entrypoint"),
        "cmd": runtime.get("Cmd"),
        "user": runtime.get("User") or "",
        "working_dir": runtime.get("WorkingDir") or "",
        "exposed_ports": sorted((runtime.get("ExposedPorts") or {}).keys()),
        "volumes": sorted(((raw.get("config") or {}).get("Volumes") or {}).keys()),
        "labels": runtime.get("Labels") or {},
        "env": dict(e.partition("=")[::2] for e in runtime.get("Env") or []),
    }
    problems = []
    for key, expected in sorted(want.items()):
        got = have[key]
        if key in ("labels", "env"):
            wrong = {k: v for k, v in expected.items() if got.get(k) != v}
            if wrong:
                problems.append("config %s: expected %s, the image has %s" % (
                    key, json.dumps(wrong, sort_keys=True),
                    json.dumps({k: got.get(k) for k in wrong}, sort_keys=True)))
        elif key in ("exposed_ports", "volumes"):
            if sorted(expected) != got:
                problems.append("config %s: expected %s, the image has %s" % (key, sorted(expected), got))
        elif (expected or None) != (got or None):
            problems.append("config %s: expected %s, the image has %s" % (key, json.dumps(expected), json.dumps(got)))
    return problems


def check(spec: Spec, limits: Optional[untar.Limits] = None,
          platform: Optional[Platform] = None) -> Tuple[List[str], List[str]]:
    """(problems, what was checked) of the image for `platform`: no problems means it passes."""
    limits = limits or untar.Limits.from_env()
    img = open_image(spec.layout, platform=platform)
    problems: List[str] = []
    done: List[str] = []
    work = tempfile.mkdtemp(prefix="smith-structure-")
    try:
        root = os.path.join(work, "root")
        os.mkdir(root, 0o700)
        apply_image(img, root, limits)
        meta = headers(img, limits) if (spec.file_owner or spec.no_setuid or spec.no_world_writable) else {}
        tree = Tree(root)
        try:
            missing = [p for p in spec.paths_present if tree.lstat(p) is None]
            if missing:
                problems.append("missing paths: %s" % _listing(missing))
            if spec.paths_present:
                done.append("%d paths present" % len(spec.paths_present))
            there = [p for p in spec.paths_absent if tree.lstat(p) is not None]
            if there:
                problems.append("paths that must not exist: %s" % _listing(there))
            if spec.paths_absent:
                done.append("%d paths absent" % len(spec.paths_absent))
            if spec.no_shell:
                shells = sorted({"%s/%s" % (d, s) for d in SHELL_DIRS for s in SHELLS
                                 if tree.lstat("%s/%s" % (d, s)) is not None})
                if shells:
                    problems.append("no_shell: the image has a shell: %s" % _listing(shells))
                done.append("no shell")
            paths = tree.walk() if meta else []
            entries = [(p, meta[p]) for p in paths if p in meta]
            if spec.file_owner:
                uid, gid = _owner(spec.file_owner, img, root)
                wrong = ["%s (%d:%d)" % (p, m.uid, m.gid) for p, m in entries
                         if (m.uid, m.gid) != (uid, gid)]
                if wrong:
                    problems.append("file_owner %s (%d:%d): owned by someone else: %s"
                                    % (spec.file_owner, uid, gid, _listing(wrong)))
                done.append("%d entries owned by %d:%d" % (len(entries), uid, gid))
            if spec.no_setuid:
                wrong = ["%s (%04o)" % (p, m.mode) for p, m in entries
                         if m.kind != "symlink" and m.mode & (stat.S_ISUID | stat.S_ISGID)]
                if wrong:
                    problems.append("no_setuid: setuid/setgid files: %s" % _listing(wrong))
                done.append("no setuid/setgid")
            if spec.no_world_writable:
                wrong = ["%s (%04o)" % (p, m.mode) for p, m in entries
                         if m.kind not in ("symlink", "hardlink") and m.mode & stat.S_IWOTH]
                if wrong:
                    problems.append("no_world_writable: writable by everyone: %s" % _listing(wrong))
                done.append("nothing world-writable")
        finally:
            tree.close()
        if spec.config:
            problems += _config_problems(img.runtime_config(), img.config, spec.config)
            done.append("config " + ", ".join(sorted(spec.config)))
    finally:
        img.store.close()
        remove_tree(work)
    return problems, done


def _owner(text: str, img: Image, root: str) -> Tuple[int, int]:
    if text != "image":
        uid, _, gid = text.partition(":")
        return int(uid), int(gid)
    return bundle.user_ids(img.runtime_config().get("User") or "", root)


def run(spec: Spec, out, platform: Optional[Platform] = None, label: str = "") -> int:
    name = "%s %s" % (spec.name, label) if label else spec.name
    problems, done = check(spec, platform=platform)
    if problems:
        print("FAIL %s" % name, file=out)
        for p in problems:
            print("  " + for_terminal(p), file=out)
        return 1
    print("PASS %s: %s" % (name, "; ".join(done) or "nothing to check"), file=out)
    return 0
