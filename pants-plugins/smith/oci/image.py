"""Assemble layers + a config into an OCI image layout (oci-layout, index.json, blobs/sha256).

Everything written is a function of the inputs: canonical JSON (sorted keys, no spaces,
UTF-8), no `created` unless the user gives one, one fixed history entry per layer.

Microcontainer skeleton (a layer of its own, added unless disabled, right after any base
layers unless the base already has the identical layer): /read /write /run /proc /sys /dev owned by uid:gid, and /tmp as a symlink to "run",
so programs that insist on /tmp write into the /run volume (the root stays read-only and needs
no extra mount). /read /write /run are declared as Volumes by default.
"""
import hashlib
import io
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from smith import safe_json
from smith.errors import SmithError
from smith.oci import layer
from smith import platforms as platforms
from smith.oci.image_source import (LAYER_TYPES, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, REF_NAME,
                                    Image, check_digest, open_image, verify_blob)
from smith.oci.tree import DIR, SYMLINK, Entry
from smith.registry.platforms import parse_platform

EMPTY_JSON = "application/vnd.oci.empty.v1+json"
SKELETON_DIRS = ("read", "write", "run", "proc", "sys", "dev")
DEFAULT_VOLUMES = ["/read", "/write", "/run"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONFIG_KEYS = {"entrypoint", "cmd", "env", "user", "workdir", "labels", "annotations",
               "exposed_ports", "volumes", "created"}
MAX_CONFIG_BYTES = 1 << 20  # an image's config (entrypoint, env, labels): a few KB
MAX_LAYER_JSON_BYTES = 64 << 10  # four fields written by `smith layer`
_DOCKER_TO_OCI = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": layer.LAYER_MEDIA_TYPE,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Blobs:
    """blobs/sha256/ of a layout being written."""

    def __init__(self, layout: str) -> None:
        self.dir = os.path.join(layout, "blobs", "sha256")
        os.makedirs(self.dir, exist_ok=True)

    def put_bytes(self, data: bytes, media_type: str) -> Dict[str, Any]:
        hexdigest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.dir, hexdigest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + hexdigest, "size": len(data)}

    def put_file(self, src, desc: Dict[str, Any], what: str) -> None:
        """Copy a blob, checking it hashes to the digest it claims."""
        hexdigest = desc["digest"].split(":", 1)[1]
        dst = os.path.join(self.dir, hexdigest)
        h = hashlib.sha256()
        size = 0
        with open(dst + ".part", "wb") as out:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if h.hexdigest() != hexdigest or size != desc["size"]:
            os.unlink(dst + ".part")
            raise SmithError("%s: content is sha256:%s (%d bytes) but its descriptor says %s (%s "
                             "bytes); rebuild it" % (what, h.hexdigest(), size, desc["digest"],
                                                     desc["size"]))
        os.replace(dst + ".part", dst)

    def put_recompressed(self, src, desc: Dict[str, Any], compression: str,
                         what: str) -> Dict[str, Any]:
        """A layer blob recompressed with `compression` (same tar, same diff_id)."""
        tmp = os.path.join(self.dir, ".recompressing.%d" % os.getpid())
        try:
            with open(tmp, "wb") as out:
                new = layer.recompress(src, out, compression, desc["diff_id"], what)
            os.replace(tmp, os.path.join(self.dir, str(new["digest"]).split(":", 1)[1]))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return new


def load_config_file(path: str) -> Dict[str, Any]:
    try:
        cfg = safe_json.load_file(path, "--config %s" % path, MAX_CONFIG_BYTES, expect=None)
    except SmithError as e:
        raise SmithError("%s; give a JSON object with the keys %s" % (e, sorted(CONFIG_KEYS))) from None
    if not isinstance(cfg, dict):
        raise SmithError("--config %s: must be a JSON object" % path)
    unknown = sorted(set(cfg) - CONFIG_KEYS)
    if unknown:
        raise SmithError("--config %s: unknown keys %s; allowed: %s"
                         % (path, unknown, sorted(CONFIG_KEYS)))
    checks = {"entrypoint": list, "cmd": list, "env": dict, "labels": dict, "annotations": dict,
              "exposed_ports": list, "volumes": list, "user": str, "workdir": str, "created": str}
    for key, typ in checks.items():
        if cfg.get(key) is not None and not isinstance(cfg[key], typ):
            raise SmithError("--config %s: %r must be a JSON %s" % (path, key, typ.__name__))
    for key in ("entrypoint", "cmd", "exposed_ports", "volumes"):
        if any(not isinstance(x, str) for x in cfg.get(key) or []):
            raise SmithError("--config %s: %r must be a list of strings" % (path, key))
    for key in ("env", "labels", "annotations"):
        if any(not isinstance(v, str) for v in (cfg.get(key) or {}).values()):
            raise SmithError("--config %s: values of %r must be strings" % (path, key))
    return cfg


def skeleton_layer(uid: int, gid: int, mtime: int,
                   compression: str = "gzip") -> Tuple[bytes, Dict[str, Any]]:
    entries = [Entry(d, DIR, 0o755, "skeleton") for d in SKELETON_DIRS]
    entries.append(Entry("tmp", SYMLINK, 0o777, "skeleton", target="run"))
    out = io.BytesIO()
    desc = layer.write_layer(layer.plan(entries), out, uid, gid, mtime, compression)
    return out.getvalue(), desc


def image_config(cfg: Dict[str, Any], base: Optional[Dict[str, Any]], uid: int, gid: int,
                 diff_ids: List[str], history: List[Dict[str, Any]],
                 platform: str = platforms.DEFAULT) -> Dict[str, Any]:
    inherited = dict((base or {}).get("config") or {})
    c: Dict[str, Any] = {}
    env: Dict[str, str] = {}
    for item in inherited.get("Env") or ([] if base else [DEFAULT_PATH]):
        k, _, v = item.partition("=")
        env[k] = v
    env.update(cfg.get("env") or {})
    if env:
        c["Env"] = ["%s=%s" % kv for kv in env.items()]
    user = cfg.get("user") or inherited.get("User") or ("%d:%d" % (uid, gid))
    c["User"] = user
    if cfg.get("entrypoint") is not None:
        c["Entrypoint"] = cfg["entrypoint"]
        if cfg.get("cmd") is not None:
            c["Cmd"] = cfg["cmd"]  # a new entrypoint resets the base's Cmd, as Docker does
    else:
        if inherited.get("Entrypoint"):
            c["Entrypoint"] = inherited["Entrypoint"]
        cmd = cfg["cmd"] if cfg.get("cmd") is not None else inherited.get("Cmd")
        if cmd:
            c["Cmd"] = cmd
    workdir = cfg.get("workdir") or inherited.get("WorkingDir")
    if workdir:
        c["WorkingDir"] = workdir
    labels = dict(inherited.get("Labels") or {})
    labels.update(cfg.get("labels") or {})
    if labels:
        c["Labels"] = labels
    ports = dict(inherited.get("ExposedPorts") or {})
    for p in cfg.get("exposed_ports") or []:
        ports[p if "/" in p else p + "/tcp"] = {}
    if ports:
        c["ExposedPorts"] = ports
    volumes = dict(inherited.get("Volumes") or {})
    for v in cfg["volumes"] if cfg.get("volumes") is not None else DEFAULT_VOLUMES:
        volumes[v] = {}
    if volumes:
        c["Volumes"] = volumes
    out: Dict[str, Any] = dict(platforms.get(platform).oci())
    out.update({
        "config": c,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    })
    if cfg.get("created"):
        out["created"] = cfg["created"]
    return out


def _history(created_by: str, created: Optional[str]) -> Dict[str, Any]:
    h: Dict[str, Any] = {"created_by": created_by}
    if created:
        h["created"] = created
    return h


def _read_layer_dir(path: str) -> Tuple[str, Dict[str, Any]]:
    what = "--layer %s: layer.json" % path
    try:
        # digest and diff_id name files and are checked against the blob: sha256 ones only
        desc = safe_json.load_file(os.path.join(path, "layer.json"), what, MAX_LAYER_JSON_BYTES)
        for key in ("mediaType", "digest", "diff_id"):
            safe_json.field(desc, key, str, what)
        if safe_json.field(desc, "size", int, what) < 0:
            raise SmithError("%s: the size is negative" % what)
        for key in ("digest", "diff_id"):
            if not check_digest(desc[key], "%s %s" % (what, key)).startswith("sha256:"):
                raise SmithError("%s: the %s is not a sha256 digest" % (what, key))
    except SmithError as e:
        raise SmithError("%s; give a `smith layer --output` directory, or rebuild it with "
                         "`smith layer`" % e) from None
    if desc["mediaType"] not in LAYER_TYPES:
        raise SmithError("--layer %s: unsupported layer media type %r" % (path, desc["mediaType"]))
    name = "layer.tar.zst" if desc["mediaType"] == layer.ZSTD_LAYER_MEDIA_TYPE else "layer.tar.gz"
    return os.path.join(path, name), desc


def build_layout(out: str, tag: str, cfg: Dict[str, Any], layer_dirs: List[str],
                 base: Optional[str] = None, skeleton: bool = True, uid: int = 10,
                 gid: int = 10, mtime: int = 0,
                 attachments: Optional[List[Tuple[str, str]]] = None,
                 compression: str = "gzip", platform: str = platforms.DEFAULT) -> Dict[str, Any]:
    """Write an OCI layout into the (empty, existing) directory `out`; returns the manifest
    descriptor as it appears in index.json. The skeleton and the `layer_dirs` layers are
    `compression` ("gzip" or "zstd"; a layer written otherwise is recompressed, its diff_id
    checked); base layers stay as the base has them. `platform` ("linux/arm64") sets the
    config's architecture/os/variant and the index entry's platform."""
    oci_platform = platforms.get(platform, "--platform").oci()
    if compression not in layer.COMPRESSIONS:
        raise SmithError("--compression %r: use gzip or zstd" % compression)
    if not tag or any(c.isspace() for c in tag):
        raise SmithError("--tag %r: give a non-empty tag without spaces, e.g. latest" % tag)
    blobs = Blobs(out)
    created = cfg.get("created")
    layers: List[Dict[str, Any]] = []
    diff_ids: List[str] = []
    history: List[Dict[str, Any]] = []
    base_config = None
    if base is not None:
        # A multi-platform base gives this platform's image (and a base of another platform is
        # refused); linux/amd64 keeps reading the base as it always did (the host's image).
        img = open_image(base, platform=None if platform == platforms.DEFAULT else parse_platform(platform))
        try:
            base_config, base_layers = _copy_base(img, blobs, base)
        finally:
            img.store.close()
        layers += [d for d, _ in base_layers]
        diff_ids += [i for _, i in base_layers]
        history += [h for h in base_config.get("history") or [] if isinstance(h, dict)]
    if skeleton:
        data, desc = skeleton_layer(uid, gid, mtime, compression)
        skeleton = desc["diff_id"] not in diff_ids  # a smith base already has it
    if skeleton:
        diff_ids.append(desc.pop("diff_id"))
        layers.append(blobs.put_bytes(data, desc["mediaType"]))
        history.append(_history("smith: microcontainer skeleton (/read /write /run ...)", created))
    for d in layer_dirs:
        path, desc = _read_layer_dir(d)
        try:
            with open(path, "rb") as f:
                if desc["mediaType"] == layer.COMPRESSIONS[compression][0]:
                    blobs.put_file(f, desc, "--layer %s" % d)
                else:
                    desc = blobs.put_recompressed(f, desc, compression, "--layer %s" % d)
        except OSError as e:
            raise SmithError("--layer %s: cannot read %s (%s)" % (d, os.path.basename(path),
                                                                 e.strerror))
        diff_ids.append(desc["diff_id"])
        layers.append({k: desc[k] for k in ("mediaType", "digest", "size")})
        history.append(_history("smith layer", created))
    config = image_config(cfg, base_config, uid, gid, diff_ids, history, platform)
    config_desc = blobs.put_bytes(canonical_json(config), OCI_CONFIG)
    manifest: Dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                "config": config_desc, "layers": layers}
    if cfg.get("annotations"):
        manifest["annotations"] = cfg["annotations"]
    manifest_desc = blobs.put_bytes(canonical_json(manifest), OCI_MANIFEST)
    entry = dict(manifest_desc, platform=oci_platform, annotations={REF_NAME: tag})
    manifests = [entry]
    for artifact_type, path in attachments or []:
        manifests.append(_attachment(blobs, artifact_type, path, manifest_desc))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    with open(os.path.join(out, "index.json"), "wb") as f:
        f.write(canonical_json(index))
    with open(os.path.join(out, "oci-layout"), "wb") as f:
        f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
    return entry


def _copy_base(img: Image, blobs: Blobs, what: str) -> Tuple[Dict[str, Any], List]:
    if img.manifest is None:
        raise SmithError("--base %s: a docker archive cannot be a base; give an OCI layout "
                         "(e.g. `skopeo copy docker-archive:X oci:DIR:TAG`)" % what)
    out = []
    for lay in img.layers:
        verify_blob(img.store, lay.descriptor(), "--base %s" % what)
        with img.store.open(lay.name) as f:
            blobs.put_file(f, lay.descriptor(), "--base %s layer" % what)
        desc = {"mediaType": _DOCKER_TO_OCI.get(lay.media_type, lay.media_type),
                "digest": lay.digest, "size": lay.size}
        out.append((desc, lay.diff_id))
    return img.config, out


def _attachment(blobs: Blobs, artifact_type: str, path: str,
                subject: Dict[str, Any]) -> Dict[str, Any]:
    """An OCI 1.1 artifact manifest holding one file, pointing at the image via `subject`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SmithError("--attach %s=%s: cannot read the file (%s)" % (artifact_type, path,
                                                                       e.strerror))
    file_desc = blobs.put_bytes(data, artifact_type)
    file_desc["annotations"] = {"org.opencontainers.image.title": os.path.basename(path)}
    empty = blobs.put_bytes(b"{}", EMPTY_JSON)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                "config": empty, "layers": [file_desc], "subject": subject}
    desc = blobs.put_bytes(canonical_json(manifest), OCI_MANIFEST)
    desc["artifactType"] = artifact_type
    return desc


def write_layout(out: str, *args, **kwargs) -> Dict[str, Any]:
    """build_layout into a temp dir next to `out`, then move it into place."""
    from smith.atomic import atomic_dir
    if os.path.lexists(out) and not (os.path.isdir(out) and not os.path.islink(out) and (
            not os.listdir(out) or os.path.isfile(os.path.join(out, "oci-layout")))):
        raise SmithError("--output %s exists and is not an OCI layout or an empty directory; "
                         "remove it or pick another path" % out)
    with atomic_dir(out) as tmp:
        entry = build_layout(tmp, *args, **kwargs)
    return entry

