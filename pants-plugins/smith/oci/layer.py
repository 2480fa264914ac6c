"""Deterministic layers: the same entries give the same bytes, whatever the host.

Order: entries sorted by path component, whiteouts first within a directory (the image spec
asks for whiteouts before their siblings), every parent directory before its children. All
entries get one mtime and one uid/gid with empty user/group names; modes are normalised
(dirs 0755, files 0755 if any x bit else 0644, symlinks 0777) and setuid/setgid/sticky
dropped unless asked to keep them. Of a group of hardlinked files, the first path in sorted
order holds the bytes and the others link to it.
"""
import hashlib
import json
import os
import queue
import threading
from typing import BinaryIO, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from smith.errors import SmithError
from smith.oci import tar_format
from smith.oci.deterministic_gzip import GzipSink
from smith.oci.tree import DIR, FILE, SYMLINK, Entry
from smith.atomic import atomic_dir_files, atomic_file

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD_LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+zstd"
# compression -> (media type, file name in a `smith layer` directory)
COMPRESSIONS = {"gzip": (LAYER_MEDIA_TYPE, "layer.tar.gz"),
                "zstd": (ZSTD_LAYER_MEDIA_TYPE, "layer.tar.zst")}
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20  # tar bytes handed to zlib at a time


def default_mtime() -> int:
    raw = os.environ.get("SOURCE_DATE_EPOCH", "0") or "0"
    try:
        return int(raw)
    except ValueError:
        raise SmithError("SOURCE_DATE_EPOCH=%r is not a whole number of seconds; unset it or "
                         "set it to e.g. 0" % raw)


def normalised_mode(kind: str, mode: int, keep_special: bool) -> int:
    special = mode & 0o7000 if keep_special else 0
    if kind == DIR:
        return 0o755 | special
    if kind == SYMLINK:
        return 0o777
    return (0o755 if mode & 0o111 else 0o644) | special


def _sort_key(path: str) -> Tuple:
    return tuple((not c.startswith(WHITEOUT), c) for c in path.split("/"))


class Record:
    """One entry as it goes into the tar."""
    __slots__ = ("path", "typeflag", "mode", "size", "link", "entry")

    def __init__(self, path: str, typeflag: bytes, mode: int, size: int = 0, link: str = "",
                 entry: Optional[Entry] = None) -> None:
        self.path, self.typeflag, self.mode = path, typeflag, mode
        self.size, self.link, self.entry = size, link, entry


def whiteouts(deletes: Iterable[str]) -> List[Entry]:
    """`--delete` paths as whiteout entries: "etc/x" hides etc/x of lower layers, "etc/app/*"
    hides everything under etc/app (an opaque whiteout)."""
    out = []
    for d in deletes:
        if d == "*" or d.endswith("/*"):
            parent = d[:-1].rstrip("/")
            out.append(Entry(parent + "/" + OPAQUE if parent else OPAQUE, FILE, 0o644, "--delete"))
        else:
            parent, _, name = d.rpartition("/")
            if not name:
                raise SmithError("--delete: give a path below the image root, not %r" % d)
            wh = WHITEOUT + name
            out.append(Entry(parent + "/" + wh if parent else wh, FILE, 0o644, "--delete"))
    return out


def plan(entries: Iterable[Entry], normalise: bool = True, keep_special: bool = False,
         deleted: Iterable[str] = ()) -> List[Record]:
    """Sorted tar records: missing parents added, hardlink groups resolved, modes set."""
    by_path: Dict[str, Entry] = {}
    for e in entries:
        if e.path in by_path:
            raise SmithError("/%s is given twice (%s and %s); merge the sources first"
                             % (e.path, by_path[e.path].origin, e.origin))
        by_path[e.path] = e
    for d in deleted:
        if d in by_path:
            raise SmithError("/%s is both deleted (--delete) and added by %s; a layer cannot do "
                             "both — drop one" % (d, by_path[d].origin))
    for path in list(by_path):  # every parent directory gets its own entry
        parent = path.rpartition("/")[0]
        while parent and parent not in by_path:
            by_path[parent] = Entry(parent, DIR, 0o755, "(parent directory)")
            parent = parent.rpartition("/")[0]
        if parent and by_path[parent].kind != DIR:
            raise SmithError("/%s (from %s) is under /%s, which %s makes a %s, not a directory"
                             % (path, by_path[path].origin, parent, by_path[parent].origin,
                                by_path[parent].kind))
    first_of_group: Dict[Tuple, str] = {}
    records = []
    for path in sorted(by_path, key=_sort_key):
        e = by_path[path]
        mode = normalised_mode(e.kind, e.mode, keep_special) if normalise else e.mode
        if e.kind == DIR:
            records.append(Record(path + "/", tar_format.DIRTYPE, mode))
        elif e.kind == SYMLINK:
            records.append(Record(path, tar_format.SYMTYPE, mode, link=e.target))
        elif e.link_group is not None and e.link_group in first_of_group:
            records.append(Record(path, tar_format.LNKTYPE, mode,
                                  link=first_of_group[e.link_group]))
        else:
            if e.link_group is not None:
                first_of_group[e.link_group] = path
            records.append(Record(path, tar_format.REGTYPE, mode, size=e.size, entry=e))
    return records


def tar_chunks(records: List[Record], uid: int, gid: int, mtime: int) -> Iterator[bytearray]:
    """The tar stream in chunks of _CHUNK bytes (the last one shorter). File contents are read
    straight into the chunk (readinto: no copy per read); each chunk is a fresh buffer that is
    never touched again once yielded, so consumers may keep views into it."""
    chunk = bytearray(_CHUNK)
    view = memoryview(chunk)
    used = 0

    def put(data: bytes) -> Iterator[bytearray]:
        nonlocal chunk, view, used
        start = 0
        while start < len(data):
            n = min(len(data) - start, _CHUNK - used)
            view[used:used + n] = data[start:start + n]
            used += n
            start += n
            if used == _CHUNK:
                yield chunk
                chunk, used = bytearray(_CHUNK), 0
                view = memoryview(chunk)

    for r in records:
        yield from put(tar_format.header(r.path, r.typeflag, r.mode, uid, gid, r.size, mtime,
                                         r.link))
        if not r.size:
            continue
        left = r.size
        with r.entry.open() as f:
            while left:
                n = f.readinto(view[used:used + min(left, _CHUNK - used)])
                if not n:
                    raise SmithError("%s: /%s shrank while the layer was written; rebuild"
                                     % (r.entry.origin, r.path.rstrip("/")))
                used += n
                left -= n
                if used == _CHUNK:
                    yield chunk
                    chunk, used = bytearray(_CHUNK), 0
                    view = memoryview(chunk)
        yield from put(tar_format.padding(r.size))
    yield from put(tar_format.END_OF_ARCHIVE)
    view.release()
    del chunk[used:]
    yield chunk


def _pipelined(chunks: Iterator[bytes], consume: Callable[[bytes], None]) -> str:
    """Run the tar producer in a thread while `consume` (zlib, which drops the GIL) works;
    returns the sha256 of all chunks (the diff_id)."""
    q: "queue.Queue" = queue.Queue(maxsize=8)
    failure: List[BaseException] = []
    tar_hash = hashlib.sha256()
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():  # the consumer may have died: never block forever
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for c in chunks:
                tar_hash.update(c)
                if not put(c):
                    return
        except BaseException as e:  # handed to the consumer thread below
            failure.append(e)
        put(None)

    t = threading.Thread(target=produce, name="smith-tar", daemon=True)
    t.start()
    try:
        while True:
            c = q.get()
            if c is None:
                break
            consume(c)
    finally:
        stop.set()
        t.join()
    if failure:
        raise failure[0]
    return "sha256:" + tar_hash.hexdigest()


def compression_sink(out: BinaryIO, compression: str):
    """The deterministic compressor of `compression` ("gzip" or "zstd") writing to `out`."""
    if compression == "gzip":
        return GzipSink(out)
    if compression == "zstd":
        from smith.oci.deterministic_zstd import ZstdSink
        return ZstdSink(out)
    raise SmithError("compression %r: use gzip or zstd" % compression)


def write_gzip_layer(records: List[Record], out: BinaryIO, uid: int, gid: int,
                     mtime: int) -> Dict[str, object]:
    """Write the gzip'ed layer to `out`; returns its descriptor (with diff_id)."""
    return write_layer(records, out, uid, gid, mtime, "gzip")


def write_layer(records: List[Record], out: BinaryIO, uid: int, gid: int, mtime: int,
                compression: str = "gzip") -> Dict[str, object]:
    """Write the layer compressed with `compression` to `out`; returns its descriptor (with
    diff_id). The tar is the same for every compression: only digest and size differ."""
    sink = compression_sink(out, compression)
    # the producer's chunks are never reused: the sink may keep views into them
    diff_id = _pipelined(tar_chunks(records, uid, gid, mtime), sink.write_owned)
    sink.close()
    return {"mediaType": COMPRESSIONS[compression][0],
            "digest": "sha256:" + sink.sha256.hexdigest(), "size": sink.size, "diff_id": diff_id}


def recompress(src: BinaryIO, out: BinaryIO, compression: str, diff_id: str,
               what: str) -> Dict[str, object]:
    """The layer blob `src` (gzip, zstd or plain tar) written to `out` compressed with
    `compression`; its tar must hash to `diff_id` (checked as it streams)."""
    from smith.untar import decompressed, STREAM_ERRORS
    sink = compression_sink(out, compression)
    tar_hash = hashlib.sha256()
    try:
        reader = decompressed(src, what)
        while True:
            chunk = reader.read(_CHUNK)
            if not chunk:
                break
            tar_hash.update(chunk)
            sink.write(chunk)
    except STREAM_ERRORS as e:
        raise SmithError("%s: the layer cannot be decompressed (%s); rebuild it" % (what, e))
    finally:
        sink.close()
    if "sha256:" + tar_hash.hexdigest() != diff_id:
        raise SmithError("%s: the layer's tar is sha256:%s, but its diff_id says %s; rebuild it"
                         % (what, tar_hash.hexdigest(), diff_id))
    return {"mediaType": COMPRESSIONS[compression][0],
            "digest": "sha256:" + sink.sha256.hexdigest(), "size": sink.size, "diff_id": diff_id}


def write_layer_dir(records: List[Record], out_dir: str, uid: int, gid: int,
                    mtime: int, compression: str = "gzip") -> Dict[str, object]:
    """DIR/layer.tar.gz (or layer.tar.zst) + DIR/layer.json, both renamed into place only when
    complete."""
    name = COMPRESSIONS[compression][1] if compression in COMPRESSIONS else "layer.tar.gz"
    with atomic_dir_files(out_dir, [name, "layer.json"]) as tmp:
        with open(tmp[name], "wb") as f:
            desc = write_layer(records, f, uid, gid, mtime, compression)
        with open(tmp["layer.json"], "w", encoding="utf-8") as f:
            f.write(json.dumps(desc, sort_keys=True, separators=(",", ":")) + "\n")
    return desc


def write_tree_tar_file(path: str, entries: Iterable[Entry], mtime: int = 0) -> str:
    """The one tree-tar writer (smith extract, merge, closure, minimize): `entries` with their
    modes as given (not normalised), every parent directory present, sorted, uid/gid 0, no
    user/group names, one mtime, uncompressed; written at `path` atomically (mode 0644).
    Returns the tar's sha256."""
    records = plan(entries, normalise=False)
    with atomic_file(path) as f:
        return write_tree_tar(records, f, 0, 0, mtime)


def write_tree_tar(records: List[Record], out: BinaryIO, uid: int = 0, gid: int = 0,
                   mtime: int = 0) -> str:
    """An uncompressed tree tar; returns its sha256."""
    h = hashlib.sha256()
    for c in tar_chunks(records, uid, gid, mtime):
        h.update(c)
        out.write(c)
    return "sha256:" + h.hexdigest()
