"""A deterministic `docker save`-format tar of an OCI layout image, for `docker/podman load`.

Contents, in this order: <config hex>.json, one <diff_id hex>.tar per layer (uncompressed, as
`docker save` writes them), manifest.json = [{"Config", "RepoTags", "Layers"}]. Every entry has
mtime 0, uid/gid 0, mode 0644. RepoTags: the tag itself when it is a full `name:tag`
reference, otherwise "localhost/smith:<tag>".
"""
import gzip
import hashlib
import json
from typing import BinaryIO, List

from smith import zstd
from smith.errors import SmithError
from smith.oci import tar_format
from smith.atomic import atomic_file
from smith.oci.image_source import Image, open_image, verify_blob


def repo_tag(tag: str) -> str:
    last = tag.rsplit("/", 1)[-1]
    return tag if ":" in last else "localhost/smith:" + tag


def decompressed(raw: BinaryIO, what: str = "a layer") -> BinaryIO:
    """Uncompressed view of a layer blob: gzip, zstd or plain tar, told apart by magic bytes."""
    magic = raw.read(4)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if magic == zstd.MAGIC:
        return zstd.stream_reader(raw, what)
    return raw


def _add(out: BinaryIO, name: str, size: int) -> None:  # out must be seekable (a file)
    out.write(tar_format.header(name, tar_format.REGTYPE, 0o644, 0, 0, size, 0))


def write_docker_archive(layout: str, tag: str, dest: str) -> None:
    img = open_image(layout, ref=tag)
    try:
        with atomic_file(dest) as out:
            _write(img, tag, out)
    finally:
        img.store.close()


def _write(img: Image, tag: str, out: BinaryIO) -> None:
    config = json.dumps(img.config, sort_keys=True, separators=(",", ":")).encode("utf-8")
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    _add(out, config_name, len(config))
    out.write(config + tar_format.padding(len(config)))
    names: List[str] = []
    for lay in img.layers:
        verify_blob(img.store, lay.descriptor(), img.store.path)
        name = lay.diff_id.split(":", 1)[1] + ".tar"
        names.append(name)
        # The header needs the uncompressed size: write a placeholder, stream, then go back.
        start = out.tell()
        out.write(b"\0" * tar_format.BLOCK)
        h = hashlib.sha256()
        size = 0
        with img.store.open(lay.name) as raw, decompressed(raw, lay.name) as plain:
            while True:
                chunk = plain.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if "sha256:" + h.hexdigest() != lay.diff_id:
            raise SmithError("%s: layer %s uncompresses to sha256:%s, not its diff_id %s"
                             % (img.store.path, lay.digest, h.hexdigest(), lay.diff_id))
        header = tar_format.header(name, tar_format.REGTYPE, 0o644, 0, 0, size, 0)
        if len(header) != tar_format.BLOCK:
            raise SmithError("%s: layer %s is %d bytes uncompressed, too large for a docker "
                             "archive entry" % (img.store.path, lay.digest, size))
        end = out.tell()
        out.seek(start)
        out.write(header)
        out.seek(end)
        out.write(tar_format.padding(size))
    manifest = json.dumps([{"Config": config_name, "Layers": names, "RepoTags": [repo_tag(tag)]}],
                          sort_keys=True, separators=(",", ":")).encode("utf-8")
    _add(out, "manifest.json", len(manifest))
    out.write(manifest + tar_format.padding(len(manifest)))
    out.write(tar_format.END_OF_ARCHIVE)
