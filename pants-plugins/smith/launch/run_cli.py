"""`smith.launch run`: run an image in the foreground; stdio (and a tty) passed through,
signals forwarded, the container's exit code returned. Of an index image, the host's platform
(or --platform's, through qemu when foreign)."""
from typing import List

from smith.launch import args, container, each_platform


def main(argv: List[str]) -> int:
    p = args.parser("smith-launch run", __doc__)
    p.add_argument("-t", "--tty", action="store_true", help="give the container a terminal")
    each_platform.add_options(p, many=False)
    ns = args.parse(p, argv)
    args.exit_on_sigterm()
    container.require_root()
    platform = each_platform.run_platform(ns.layout, ns.platform, ns.emulation)
    image, opts, settings = args.load(ns, tty=ns.tty, platform=platform)
    result = container.run(image, opts, settings, capture=False, timeout=ns.timeout, write_dir=ns.write)
    if result.timed_out:
        import sys
        print("smith launch: the container was killed after --timeout %s s" % ns.timeout, file=sys.stderr)
    return result.exit_code
