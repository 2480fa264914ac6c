"""Test helper: write small but real OCI layouts (image, multi-platform index, SBOM artifact)
without depending on smith.oci, so the registry tests stand on their own."""
import gzip
import hashlib
import io
import json
import os
import tarfile
from typing import Dict, List, Optional

from smith.registry import media_types

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"


def _json(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def layer_tar_gz(files: Dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(files[name]), 0o644, 10, 10
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


class LayoutBuilder:
    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        self.entries: List[dict] = []

    def blob(self, data: bytes, media_type: str) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.path, "blobs", "sha256", digest[7:]), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def image(self, files: Dict[str, bytes], arch: str = "amd64", variant: Optional[str] = None,
              extra_layers: List[bytes] = ()) -> dict:
        layers = [self.blob(layer_tar_gz(files), LAYER)] + [self.blob(b, LAYER)
                                                             for b in extra_layers]
        config = {"architecture": arch, "os": "linux",
                  "config": {"Entrypoint": ["/hello"], "User": "10:10"},
                  "rootfs": {"type": "layers", "diff_ids": [
                      "sha256:" + hashlib.sha256(gzip.decompress(self._read(l))).hexdigest()
                      for l in layers]}}
        if variant:
            config["variant"] = variant
        manifest = {"schemaVersion": 2, "mediaType": media_types.OCI_MANIFEST,
                    "config": self.blob(_json(config), CONFIG), "layers": layers}
        desc = self.blob(_json(manifest), media_types.OCI_MANIFEST)
        desc["platform"] = {"os": "linux", "architecture": arch}
        if variant:
            desc["platform"]["variant"] = variant
        return desc

    def index(self, manifests: List[dict]) -> dict:
        return self.blob(_json({"schemaVersion": 2, "mediaType": media_types.OCI_INDEX,
                                "manifests": manifests}), media_types.OCI_INDEX)

    def artifact(self, subject: dict, content: bytes, artifact_type: str) -> dict:
        """An OCI 1.1 artifact manifest (e.g. an SBOM) whose subject is `subject`."""
        empty = self.blob(b"{}", EMPTY)
        manifest = {"schemaVersion": 2, "mediaType": media_types.OCI_MANIFEST,
                    "artifactType": artifact_type, "config": empty,
                    "layers": [self.blob(content, artifact_type)],
                    "subject": {k: subject[k] for k in ("mediaType", "digest", "size")},
                    "annotations": {"org.opencontainers.image.created": "1970-01-01T00:00:00Z"}}
        return self.blob(_json(manifest), media_types.OCI_MANIFEST)

    def name(self, descriptor: dict, ref: Optional[str]) -> None:
        entry = dict(descriptor)
        if ref:
            entry["annotations"] = {media_types.REF_NAME: ref}
        self.entries.append(entry)

    def write(self) -> str:
        with open(os.path.join(self.path, "oci-layout"), "wb") as f:
            f.write(_json({"imageLayoutVersion": "1.0.0"}))
        with open(os.path.join(self.path, "index.json"), "wb") as f:
            f.write(_json({"schemaVersion": 2, "mediaType": media_types.OCI_INDEX,
                           "manifests": self.entries}))
        return self.path

    def _read(self, desc: dict) -> bytes:
        with open(os.path.join(self.path, "blobs", "sha256", desc["digest"][7:]), "rb") as f:
            return f.read()


def simple_layout(path: str, salt: str = "", ref: str = "latest") -> dict:
    """One small linux/amd64 image named `ref`; returns its descriptor."""
    b = LayoutBuilder(path)
    desc = b.image({"hello": b"#!hello " + salt.encode(), "etc/passwd": b"app:x:10:10::/:\n"})
    b.name(desc, ref)
    b.write()
    return desc
