"""`smith.launch run`: run an image in the foreground; stdio (and a tty) passed through,
signals forwarded, the container's exit code returned."""
from typing import List

from smith.launch import args, container


def main(argv: List[str]) -> int:
    p = args.parser("smith-launch run", __doc__)
    p.add_argument("-t", "--tty", action="store_true", help="give the container a terminal")
    ns = args.parse(p, argv)
    args.exit_on_sigterm()
    image, opts, settings = args.load(ns, tty=ns.tty)
    result = container.run(image, opts, settings, capture=False, timeout=ns.timeout, write_dir=ns.write)
    if result.timed_out:
        import sys
        print("smith launch: the container was killed after --timeout %s s" % ns.timeout, file=sys.stderr)
    return result.exit_code
