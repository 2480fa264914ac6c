"""`smith unpack`: safely unpack an OCI layout (dir or tar, PATH:TAG) or docker archive."""
from typing import List

from smith.oci import unpack
from smith.oci.layer_cli import ArgParser
from smith.untar import Limits


def parser() -> ArgParser:
    p = ArgParser(prog="smith unpack", description=__doc__)
    p.add_argument("--output", required=True, help="directory to create with the image's files")
    p.add_argument("--config-out", metavar="FILE.json",
                   help="write Env/Entrypoint/Cmd/WorkingDir/ExposedPorts/Labels/User here")
    p.add_argument("source", help="OCI layout directory or tar (optionally PATH:TAG), or a "
                                  "docker-archive tar")
    Limits.add_arguments(p)
    return p


def main(argv: List[str]) -> int:
    args = parser().parse_args(argv)
    unpack.unpack_image(args.source, args.output, args.config_out, Limits.from_args(args))
    return 0
