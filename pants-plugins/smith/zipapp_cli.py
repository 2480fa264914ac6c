"""`smith zipapp`: pack Python sources into a deterministic, executable zipapp.

Used for the shipped commands that must start fast with the machine's own Python and no
third-party packages (dist/smith-runtime, dist/crashcart), and for dist/smith with its pure-Python
libraries bundled. Start-up is the point, so (measured for the runtime, see bench/):
- the entry module is imported straight from a `python3 -ISc` boot line: running `__main__.py`
  through runpy imports importlib.util, contextlib, functools... (~4 ms CPU per start); with
  `.pyc` files the line execs boot code stored before the zip (smith/zipapp_boot.py) that serves
  them from an index, without zipimport parsing the whole central directory (2.3M instructions
  for the runtime);
- entries are stored, not deflated, and carry legacy-location `.pyc` files compiled by the target
  interpreter with unchecked-hash invalidation (no mtimes: deterministic; zipimport uses them
  without reading the source, and falls back to the `.py` under another Python version);
- `--only` keeps just the modules the command imports.
"""
import argparse
import importlib.util
import io
import os
import pkgutil
import shutil
import stat
import subprocess
import tempfile
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

from smith.errors import SmithError

# A fixed time for every entry: the zip format cannot store times before 1980.
_EPOCH_1980 = (1980, 1, 1, 0, 0, 0)
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _py_files(top: str, base: str) -> List[Tuple[str, str]]:
    """(archive name, path) of every .py file under `top`, named relative to `base`."""
    found = []
    for d, dirnames, names in os.walk(top):
        dirnames[:] = [n for n in dirnames if n != "__pycache__"]
        found += [(os.path.relpath(os.path.join(d, f), base), os.path.join(d, f))
                  for f in names if f.endswith(".py")]
    return sorted(found)


def _bundled(package: str) -> List[Tuple[str, str]]:
    """The pure-Python files of an importable package (from the running interpreter's path)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SmithError("cannot bundle %r: it is not an importable package here" % package)
    top = list(spec.submodule_search_locations)[0]
    return _py_files(top, os.path.dirname(top))


def boot_line(python: str, module: str) -> str:
    """`#!PYTHON -ISc...`: put the archive on sys.path (made absolute: the command may change
    directory before it imports) and import MODULE.__main__ (no spaces, so `/usr/bin/env -S
    python3` would split it the same way). posix, not os: `import os` costs ~4M instructions,
    more than a third of the runtime's own start (see smith/runtime/posixos.py). Used as is when
    the archive has no .pyc to index."""
    code = ("s=__import__('sys');p=s.argv.pop(1);s.path[0]=(p[:1]=='/'and(p)or(__import__('posix').getcwd()+'/'+p));"
            "__import__('%s.__main__')" % module)
    return "#!%s -ISc%s\n" % (python, code)


def _pyc_index(zipped: bytes) -> Tuple[bytes, Dict[str, tuple]]:
    """(magic, {module: (entry name, data offset in the zip, size, is package)}) of the
    archive's unchecked-hash .pyc entries (smith/zipapp_boot.py serves them)."""
    index, magic = {}, b""
    with zipfile.ZipFile(io.BytesIO(zipped)) as z:
        for info in z.infolist():
            if not info.filename.endswith(".pyc") or info.compress_type != zipfile.ZIP_STORED:
                continue
            head = zipped[info.header_offset:info.header_offset + 30]
            start = info.header_offset + 30 + int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little")
            data = zipped[start:start + info.file_size]
            if data[4:8] != b"\x01\0\0\0" or (magic and data[:4] != magic):
                continue
            magic = data[:4]
            module = info.filename[:-4].replace("/", ".")
            package = module.endswith(".__init__")
            index[module[:-9] if package else module] = (info.filename, start, info.file_size, package)
    return magic, index


def _boot(python: str, module: str, zipped: bytes, precompile: Optional[str]) -> bytes:
    """What goes in front of the zip: with .pyc entries, a #! line that execs the boot code
    (smith/zipapp_boot.py and its call with the index, compiled by the precompiling Python,
    whose magic number it starts with), or, under another Python, the source boot_line() runs;
    else boot_line() alone. The line holds the blob's position, the blob the zip's: both are
    fixed by iterating (the numbers' widths settle after a round or two)."""
    magic, index = _pyc_index(zipped)
    if not index or not precompile:
        return boot_line(python, module).encode()
    source = pkgutil.get_data("smith", "zipapp_boot.py")  # also from a zipped PEX
    fallback = boot_line(python, module).split("-ISc", 1)[1].encode()
    start = end = 0
    while True:
        call = "\n_boot(%r, %r, %d, %r)\n" % (module, magic, end, index)
        code = magic + _marshal_compiled(precompile, source + call.encode())
        line = ("#!%s -IScd=open(__import__('sys').argv[1],'rb').read(%d)[%d:];exec(__import__('marshal')"
                ".loads(d[4:%d])if(d[:4]==__import__('_frozen_importlib_external').MAGIC_NUMBER)else(d[%d:]))\n"
                % (python, end, start, len(code), len(code))).encode()
        if (start, end) == (len(line), len(line) + len(code) + len(fallback)):
            break
        start, end = len(line), len(line) + len(code) + len(fallback)
    if len(line) > 255:  # the kernel reads 256 bytes of a #! line: longer ones get cut
        return boot_line(python, module).encode()
    return line + code + fallback


def _marshal_compiled(python: str, source: bytes) -> bytes:
    proc = subprocess.run(
        [python, "-I", "-c", "import marshal,sys;sys.stdout.buffer.write(marshal.dumps("
                             "compile(sys.stdin.buffer.read(),'smith/zipapp_boot.py','exec')))"],
        input=source, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"PATH": _PATH})
    if proc.returncode != 0:
        raise SmithError("compiling the boot code with %s failed:\n%s" % (python, proc.stderr.decode()[-2000:]))
    return proc.stdout


def _selected(files: List[Tuple[str, str]], only: Sequence[str]) -> List[Tuple[str, str]]:
    if not only:
        return files
    keep = [(n, p) for n, p in files if any(n == o or n.startswith(o.rstrip("/") + "/") for o in only)]
    missing = [o for o in only if not any(n == o or n.startswith(o.rstrip("/") + "/") for n, _ in keep)]
    if missing:
        raise SmithError("--only %s matched no source file" % ", ".join(missing))
    return keep


def _compile(tree: str, python: str) -> None:
    proc = subprocess.run(
        # -s/-p: record archive-relative file names, not this (random) sandbox path.
        [python, "-I", "-m", "compileall", "-q", "-b", "-s", tree, "-p", "/",
         "--invalidation-mode", "unchecked-hash", tree],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
        env={"PATH": _PATH, "SOURCE_DATE_EPOCH": "0"},
    )
    if proc.returncode != 0:
        raise SmithError("compiling with %s failed:\n%s" % (python, proc.stdout[-2000:]))


def write_zipapp(src_dir: str, main_module: str, output: str, python: str,
                 bundle: Sequence[str] = (), only: Sequence[str] = (),
                 precompile: Optional[str] = None) -> None:
    files = _selected(_py_files(src_dir, src_dir), only)
    if not files:
        raise SmithError("no Python sources under %s" % src_dir)
    for package in bundle:
        files += _bundled(package)
    out_dir = os.path.dirname(os.path.abspath(output))
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tree = os.path.join(tmp, "tree")
        for name, path in files:
            os.makedirs(os.path.dirname(os.path.join(tree, name)), exist_ok=True)
            shutil.copyfile(path, os.path.join(tree, name))
        if precompile:
            _compile(tree, precompile)
        names = sorted(os.path.relpath(os.path.join(d, f), tree)
                       for d, _, fs in os.walk(tree) for f in fs)
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_STORED) as z:
            for name in names:
                info = zipfile.ZipInfo(name.replace(os.sep, "/"), date_time=_EPOCH_1980)
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                with open(os.path.join(tree, name), "rb") as f:
                    z.writestr(info, f.read())
        app = os.path.join(tmp, "app")
        with open(app, "wb") as out:
            out.write(_boot(python, main_module, zipped.getvalue(), precompile))
            out.write(zipped.getvalue())
        os.chmod(app, 0o755)
        os.replace(app, output)


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="smith zipapp", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True)
    p.add_argument("--main", required=True, help="package whose __main__ runs, e.g. smith.runtime")
    p.add_argument("--python", default="/usr/bin/python3", help="the interpreter of the #! line")
    p.add_argument("--bundle", action="append", default=[],
                   help="also pack this pure-Python package from the running interpreter")
    p.add_argument("--only", action="append", default=[],
                   help="keep only these files/directories of SRC_DIR (e.g. smith/runtime)")
    p.add_argument("--precompile", metavar="PYTHON",
                   help="add .pyc files compiled by this interpreter (the one of the #! line)")
    p.add_argument("src_dir", help="directory holding the package(s)")
    a = p.parse_args(argv)
    write_zipapp(a.src_dir, a.main, a.output, a.python, a.bundle, a.only, a.precompile)
    return 0
