"""`smith pyc`: unchecked-hash .pyc for the .py files of a layer, by the image's interpreter.

smith pyc --python-tree TREE.tar [--python /usr/bin/python3.11] --output PYC.tar
          [--dir IMAGEPATH=HOSTDIR]... [--tar TREE.tar]... [--exclude GLOB]...

The sources are given the way `smith layer` takes them (--dir/--tar/--exclude), so the .pyc
sit beside exactly the .py files the layer holds; the output is a tree tar of
`DIR/__pycache__/NAME.TAG.pyc` files for `smith layer --tar`. Unchecked-hash .pyc hold no
mtime and are never compared with their source at import: the same sources give the same
bytes. All files are compiled in one fresh interpreter with a fixed hash seed, in sorted order.
"""
import argparse
import json
import os
import pkgutil
import posixpath
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

from smith.bytecode import interpreter
from smith.elf.treetar import remove_tree, unpack_root_tar, write_tree_tar
from smith.errors import SmithError
from smith import safe_json
from smith.oci import tree
from smith.safe_fs import Unsafe, open_regular
from smith.text import printable
from smith.untar import Limits

TIMEOUT_SECONDS = 1800
MAX_LINKS = 8  # symlink hops from a .py to its file
MAX_PYC_BYTES = 64 << 20  # the biggest stdlib .pyc is ~0.5 MB
MAX_REPORT_BYTES = 16 << 20  # the cache tag and one short line per file that did not compile


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SmithError("%s (see --help)" % message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="smith pyc", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--python-tree", required=True, metavar="TREE.tar",
                   help="tree tar holding the image's interpreter, its libraries and stdlib")
    p.add_argument("--python", help="the interpreter inside that tree (default /usr/bin/python3, "
                                    "else the one /usr/bin/python3.N)")
    p.add_argument("--output", required=True, metavar="PYC.tar", help="tree tar to write")
    p.add_argument("--dir", action="append", default=[], metavar="IMAGEPATH=HOSTDIR",
                   help="sources as `smith layer --dir` takes them")
    p.add_argument("--tar", action="append", default=[], metavar="TREE.tar",
                   help="sources as `smith layer --tar` takes them")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="what the layer leaves out (no .pyc for it)")
    Limits.add_arguments(p)
    return p


def layer_entries(dirs: List[str], tars: List[str], excludes: List[str]) -> List[tree.Entry]:
    """The entries `smith layer` would write for the same arguments (whiteouts aside)."""
    sources = []
    for spec in dirs:
        image_path, sep, host = spec.partition("=")
        if not sep or not host:
            raise SmithError("--dir %r: expected IMAGEPATH=HOSTDIR, e.g. --dir /opt=files" % spec)
        sources.append(tree.read_dir(host, tree.clean_image_path(image_path, "--dir")))
    for t in tars:
        sources.append(tree.read_tree_tar(t))
    return tree.Excluder(excludes).filter(tree.merge(sources))


def sources_to_compile(entries: List[tree.Entry]) -> List[Tuple[str, tree.Entry]]:
    """(image path, entry with the source) of each `NAME.py` that is a file, or a symlink to a
    file of the same tree (Debian links e.g. sitecustomize.py into /etc), and has no .pyc
    shipped beside it; sorted by path."""
    by_path = {e.path: e for e in entries}
    shipped = {p.rpartition("/")[0] + "/" + p.rpartition("/")[2].split(".")[0]
               for p in by_path
               if p.endswith(".pyc") and p.rpartition("/")[0].endswith("__pycache__")}
    out = []
    for e in entries:
        if not e.path.endswith(".py") or not stem(e.path):
            continue
        if cache_dir(e.path) + "/" + stem(e.path) in shipped:
            continue  # the tree ships its own bytecode: keep it
        source = _follow(e, by_path)
        if source is not None:
            out.append((e.path, source))
    return sorted(out, key=lambda pe: pe[0])


def _follow(e: tree.Entry, by_path: Dict[str, tree.Entry]) -> Optional[tree.Entry]:
    """The file `e` is or links to inside the tree; None for a link that leaves it or loops."""
    for _ in range(MAX_LINKS):
        if e.kind == tree.FILE:
            return e
        if e.kind != tree.SYMLINK:
            return None
        base = "" if e.target.startswith("/") else e.path.rpartition("/")[0]
        target = posixpath.normpath(posixpath.join("/", base, e.target)).lstrip("/")
        if target not in by_path:
            return None
        e = by_path[target]
    return None


def cache_dir(path: str) -> str:
    head, _, _ = path.rpartition("/")
    return (head + "/" if head else "") + "__pycache__"


def stem(path: str) -> str:
    return path.rpartition("/")[2][: -len(".py")]


def pyc_path(path: str, cache_tag: str) -> str:
    """importlib.util.cache_from_source for optimization level 0, on an image path."""
    return "%s/%s.%s.pyc" % (cache_dir(path), stem(path), cache_tag)


def compile_entries(python_root: str, python: str, sources: List[Tuple[str, tree.Entry]], work: str
                    ) -> Tuple[Dict[str, bytes], List[List[str]]]:
    """{pyc image path: bytes} for `sources`, and the [path, error] that did not compile."""
    src_dir, out_dir = os.path.join(work, "src"), os.path.join(work, "out")
    os.mkdir(src_dir)
    os.mkdir(out_dir)
    manifest = []
    for i, (path, e) in enumerate(sources):
        host = os.path.join(src_dir, str(i))
        with e.open() as f, open(host, "wb") as out:
            left = e.size  # a tar entry's file object runs on past its content
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    raise SmithError("%s: /%s is shorter than its recorded size" % (e.origin, e.path))
                out.write(chunk)
                left -= len(chunk)
        manifest.append([host, "/" + path])
    manifest_path = os.path.join(work, "manifest.json")
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    worker = os.path.join(work, "worker", "smith_pyc_worker.py")
    os.mkdir(os.path.dirname(worker))  # its own dir: the interpreter's sys.path[0] holds nothing else
    data = pkgutil.get_data("smith.bytecode", "worker.py")
    assert data is not None
    with open(worker, "wb") as f:
        f.write(data)
    argv = interpreter.command(python_root, python, ["-s", "-S", "-B", worker, manifest_path, out_dir])
    out = interpreter.run(argv, "the image's interpreter %s" % python, TIMEOUT_SECONDS, MAX_REPORT_BYTES)
    tag, failed = _report(out, python)
    generated = {}
    for i, (path, _) in enumerate(sources):
        host = os.path.join(out_dir, str(i))
        if not os.path.lexists(host):
            continue  # did not compile: reported in `failed`
        try:  # what the interpreter wrote: a regular file (no link out of the sandbox), capped
            with os.fdopen(open_regular(host), "rb") as f:
                data = f.read(MAX_PYC_BYTES + 1)
        except (Unsafe, OSError) as e:
            raise SmithError("the .pyc of /%s written by %s is unreadable: %s" % (path, python, e))
        if len(data) > MAX_PYC_BYTES:
            raise SmithError("the .pyc of /%s is larger than %d bytes; is /%s a module?"
                             % (path, MAX_PYC_BYTES, path))
        generated["/" + pyc_path(path, tag)] = data
    return generated, failed


def _report(out: str, python: str) -> Tuple[str, List[Tuple[str, str]]]:
    """The worker's report, as the image's interpreter printed it: that binary comes with the
    image (a base, a package), so its output is checked like any input from strangers."""
    what = "the compile report of the image's interpreter %s" % python
    try:
        report = safe_json.loads(out, what, MAX_REPORT_BYTES)
        tag = safe_json.field(report, "cache_tag", str, what)
        failed = safe_json.field(report, "failed", list, what)
        if not all(isinstance(f, list) and len(f) == 2 and all(isinstance(x, str) for x in f)
                   for f in failed):
            raise SmithError("%s: 'failed' must hold [path, error] pairs of strings" % what)
    except SmithError as e:
        raise SmithError("%s (it printed %r); is it CPython 3?" % (e, out[:200])) from None
    if not tag or "/" in tag or tag.startswith("."):
        raise SmithError("the image's interpreter %s reports cache tag %r; is it CPython 3?" % (python, tag[:200]))
    return tag, [(path, error) for path, error in failed]


def main(argv: List[str]) -> int:
    args = parser().parse_args(argv)
    limits = Limits.from_args(args)
    sources = sources_to_compile(layer_entries(args.dir, args.tar, args.exclude))
    work = tempfile.mkdtemp(prefix=".smith-pyc-", dir=os.getcwd())
    try:
        generated: Dict[str, bytes] = {}
        if sources:
            root = unpack_root_tar(args.python_tree, work, limits)
            python = interpreter.find_python(root, args.python)
            generated, failed = compile_entries(root, python, sources, work)
            for path, error in failed:  # as the image's interpreter wrote them: escaped
                print("smith pyc: warning: %s does not compile, so it gets no .pyc (%s)"
                      % (printable(path, 1000), printable(error, 1000)), file=sys.stderr)
        write_tree_tar(args.output, work, [], generated)
    finally:
        remove_tree(work)
    print("smith pyc: %d .pyc for %d .py files" % (len(generated), len(sources)))
    return 0
