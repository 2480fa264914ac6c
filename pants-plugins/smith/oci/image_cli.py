"""`smith image`: layers + config -> OCI image layout; prints the manifest digest."""
import os
from typing import List

from smith.errors import SmithError
from smith import platforms
from smith.oci import docker_archive, image, layer
from smith.oci.layer_cli import ArgParser


def parser() -> ArgParser:
    p = ArgParser(prog="smith image", description=__doc__)
    p.add_argument("--output", required=True, help="OCI layout directory to write")
    p.add_argument("--tag", required=True, help="org.opencontainers.image.ref.name of the image")
    p.add_argument("--config", required=True, help="CONFIG.json (entrypoint, cmd, env, user, ...)")
    p.add_argument("--layer", action="append", default=[], metavar="LAYERDIR",
                   help="a `smith layer --output` directory; repeat in order, lowest first")
    p.add_argument("--base", help="OCI layout (DIR or DIR:TAG) whose layers come first and whose "
                                  "config is inherited")
    p.add_argument("--no-skeleton", action="store_true",
                   help="leave out the /read /write /run /proc /sys /dev skeleton layer")
    p.add_argument("--uid", type=int, default=10, help="owner of the skeleton (default 10)")
    p.add_argument("--gid", type=int, default=10, help="group of the skeleton (default 10)")
    p.add_argument("--mtime", type=int, default=None,
                   help="mtime of skeleton entries (default $SOURCE_DATE_EPOCH, else 0)")
    p.add_argument("--attach", action="append", default=[], metavar="ARTIFACT_TYPE=FILE",
                   help="attach FILE as an OCI artifact referring to the image (e.g. an SBOM)")
    p.add_argument("--compression", choices=sorted(layer.COMPRESSIONS), default="gzip",
                   help="compression of the image's own layers: gzip (default) or zstd "
                   "(application/vnd.oci.image.layer.v1.tar+zstd; base layers stay as they are)")
    p.add_argument("--platform", default=platforms.DEFAULT,
                   help="the image's platform, one of %s (default %s): the config's "
                   "architecture/os/variant and the index entry's platform"
                   % (", ".join(platforms.PLATFORMS), platforms.DEFAULT))
    p.add_argument("--docker-archive", metavar="FILE.tar",
                   help="also write a `docker save`-format tar of the image")
    return p


def main(argv: List[str]) -> int:
    args = parser().parse_args(argv)
    attachments = []
    for spec in args.attach:
        artifact_type, sep, path = spec.partition("=")
        if not sep or not artifact_type or not path:
            raise SmithError("--attach %r: expected ARTIFACT_TYPE=FILE, e.g. "
                             "application/spdx+json=sbom.spdx.json" % spec)
        attachments.append((artifact_type, path))
    cfg = image.load_config_file(args.config)
    mtime = layer.default_mtime() if args.mtime is None else args.mtime
    entry = image.write_layout(args.output, args.tag, cfg, args.layer, base=args.base,
                               skeleton=not args.no_skeleton, uid=args.uid, gid=args.gid,
                               mtime=mtime, attachments=attachments,
                               compression=args.compression, platform=args.platform)
    if args.docker_archive:
        docker_archive.write_docker_archive(os.path.abspath(args.output), args.tag,
                                            args.docker_archive)
    print(entry["digest"])
    return 0
