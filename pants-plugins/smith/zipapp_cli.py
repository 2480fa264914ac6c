"""`smith zipapp`: pack Python sources into a deterministic, executable zipapp.

Used for the shipped commands that must start fast with the machine's own Python and no
third-party packages (dist/smith-runtime, dist/crashcart): the archive runs `python3 -IS`
(isolated, no site) and imports only from itself.
"""
import argparse
import importlib.util
import os
import stat
import zipfile
from typing import List, Tuple

from smith.errors import SmithError

# A fixed time for every entry: the zip format cannot store times before 1980.
_EPOCH_1980 = (1980, 1, 1, 0, 0, 0)


def _py_files(top: str, base: str) -> List[Tuple[str, str]]:
    """(archive name, path) of every .py file under `top`, named relative to `base`."""
    return sorted(
        (os.path.relpath(os.path.join(d, f), base), os.path.join(d, f))
        for d, _, names in os.walk(top)
        for f in names
        if f.endswith(".py")
    )


def _bundled(package: str) -> List[Tuple[str, str]]:
    """The pure-Python files of an importable package (from the running interpreter's path)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SmithError("cannot bundle %r: it is not an importable package here" % package)
    top = list(spec.submodule_search_locations)[0]
    return _py_files(top, os.path.dirname(top))


def write_zipapp(src_dir: str, main_module: str, output: str, interpreter: str,
                 bundle: List[str] = ()) -> None:
    files = _py_files(src_dir, src_dir)
    if not files:
        raise SmithError("no Python sources under %s" % src_dir)
    for package in bundle:
        files += _bundled(package)
    tmp = output + ".tmp"
    with open(tmp, "wb") as out:
        out.write(b"#!" + interpreter.encode() + b"\n")
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            main = "import runpy\nrunpy.run_module(%r, run_name='__main__', alter_sys=True)\n" % main_module
            for name, data in [("__main__.py", main.encode())] + [
                (name, open(path, "rb").read()) for name, path in sorted(files)
            ]:
                info = zipfile.ZipInfo(name.replace(os.sep, "/"), date_time=_EPOCH_1980)
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, output)


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="smith zipapp", description=__doc__)
    p.add_argument("--output", required=True)
    p.add_argument("--main", required=True, help="module run as __main__, e.g. smith.runtime")
    p.add_argument("--python", default="/usr/bin/python3 -IS", help="the #! line's interpreter")
    p.add_argument("--bundle", action="append", default=[],
                   help="also pack this pure-Python package from the running interpreter")
    p.add_argument("src_dir", help="directory holding the package(s)")
    a = p.parse_args(argv)
    write_zipapp(a.src_dir, a.main, a.output, a.python, a.bundle)
    return 0
