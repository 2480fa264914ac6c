"""Read the files of a .deb: ar member data.tar.{xz,zst,gz,bz2} (and the control file's
Package name). Maintainer scripts in control.tar are never run."""
import io
import tarfile
from typing import Dict, List

from debian import deb822

from smith.errors import SmithError
from smith.packages import ar
from smith.packages.compression import decompress
from smith.packages.entries import Entry


def _member(members: Dict[str, bytes], prefix: str, what: str) -> bytes:
    for name in sorted(members):
        if name == prefix or name.startswith(prefix + "."):
            return decompress(members[name], "%s member %s" % (what, name))
    raise SmithError("%s has no %s member; it is not a Debian binary package" % (what, prefix))


def _open_tar(data: bytes, what: str) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    except tarfile.TarError as e:
        raise SmithError("%s: %s; the package is truncated or corrupt" % (what, e))


def package_name(data: bytes, what: str) -> str:
    control = _open_tar(_member(ar.members(data, what), "control.tar", what), what)
    for member in control.getmembers():
        if member.name.lstrip("./") == "control":
            text = control.extractfile(member).read().decode("utf-8", "replace")
            return deb822.Deb822(text).get("Package", "")
    raise SmithError("%s has no control file" % what)


def entries(data: bytes, what: str) -> List[Entry]:
    out: List[Entry] = []
    by_name: Dict[str, Entry] = {}
    tar = _open_tar(_member(ar.members(data, what), "data.tar", what), what)
    try:
        for m in tar:
            path = m.name
            while path.startswith("./") or path.startswith("/"):
                path = path[2:] if path.startswith("./") else path[1:]
            path = path.rstrip("/")
            if not path or path == ".":
                continue
            mode = m.mode & 0o7777
            if m.isdir():
                entry = Entry(path, "dir", mode)
            elif m.issym():
                entry = Entry(path, "symlink", mode, b"", m.linkname)
            elif m.islnk():
                # A hard link becomes a copy: tree tars hold only files, dirs and symlinks.
                source = by_name.get(m.linkname.lstrip("./").lstrip("/"))
                if source is None:
                    raise SmithError("%s: hard link %s points to %s, which is not earlier in the "
                                     "package" % (what, path, m.linkname))
                entry = Entry(path, "file", source.mode, source.data)
            elif m.isreg():
                entry = Entry(path, "file", mode, tar.extractfile(m).read())
            else:
                raise SmithError("%s: %s is a device or fifo; smith trees hold only files, "
                                 "directories and symlinks" % (what, path))
            by_name[path] = entry
            out.append(entry)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise SmithError("%s: broken data.tar (%s); the package is truncated or corrupt" % (what, e))
    return out
