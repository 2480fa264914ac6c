"""Command-line options shared by `smith push` and `smith pull`, and the client they build."""
import argparse
import os
import sys


from smith.errors import SmithError
from smith.registry.blob_locations import BlobLocations, default_cache_file
from smith.registry.client import RegistryClient
from smith.registry.credentials import find_credentials
from smith.registry.reference import Reference
from smith.registry.transport import (DEFAULT_DEADLINE, DEFAULT_MIN_RATE, DEFAULT_RATE_WINDOW,
                                      DEFAULT_TIMEOUT, Transport)


class _Parser(argparse.ArgumentParser):
    """argparse that raises SmithError instead of exiting, so errors print like every other."""

    def error(self, message: str):  # type: ignore[override]
        raise SmithError("%s\n%s" % (message, self.format_usage().strip()))


def _terminal_columns() -> int:
    """shutil.get_terminal_size's answer without importing shutil (bz2, lzma, fnmatch: ~6M
    instructions), which argparse's default formatter does at every add_argument."""
    try:
        return int(os.environ.get("COLUMNS", "")) or 80
    except ValueError:
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, width=_terminal_columns() - 2)


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description=description, allow_abbrev=False,
                formatter_class=_formatter)
    p.add_argument("--ca", metavar="FILE", help="PEM CA certificate(s) trusted in addition to "
                   "the system CAs")
    p.add_argument("--insecure", action="store_true", help="do not verify TLS certificates and "
                   "allow plain http (only when asked: the registry can then be impersonated)")
    p.add_argument("--auth-file", metavar="FILE", help="credentials file (auth.json / docker "
                   "config.json format) read before $REGISTRY_AUTH_FILE and ~/.docker/config.json")
    p.add_argument("--retries", type=int, default=4, metavar="N", help="retries of each request "
                   "on dropped connections and 5xx answers, with exponential backoff (default 4)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help="how long the registry may stay silent (default %g)" % DEFAULT_TIMEOUT)
    p.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE, metavar="SECONDS",
                   help="how long one request (e.g. one layer's download) may take in all "
                   "(default %g)" % DEFAULT_DEADLINE)
    p.add_argument("--min-rate", type=float, default=DEFAULT_MIN_RATE / 1024, metavar="KIB_S",
                   help="slowest transfer accepted, in KiB/s averaged over --rate-window "
                   "seconds while bytes flow; 0 for no minimum (default %g)"
                   % (DEFAULT_MIN_RATE / 1024))
    p.add_argument("--rate-window", type=float, default=DEFAULT_RATE_WINDOW, metavar="SECONDS",
                   help="the window of --min-rate (default %g)" % DEFAULT_RATE_WINDOW)
    p.add_argument("--jobs", type=int, default=4, metavar="N", help="blobs transferred at once "
                   "(default 4)")
    return p


def client_for(args: argparse.Namespace, ref: Reference) -> RegistryClient:
    if args.ca and not os.path.isfile(args.ca):
        raise SmithError("--ca %s: no such file" % args.ca)
    if args.retries < 0 or args.retries > 20:
        raise SmithError("--retries %d: use 0..20" % args.retries)
    for name in ("timeout", "deadline", "rate_window"):
        value = getattr(args, name)
        if not 0 < value < float("inf"):
            raise SmithError("--%s %s: give a positive number of seconds" % (
                name.replace("_", "-"), value))
    if not 1 <= args.jobs <= 32:
        raise SmithError("--jobs %d: use 1..32" % args.jobs)
    if not 0 <= args.min_rate < float("inf"):
        raise SmithError("--min-rate %s: give KiB/s, 0 or more" % args.min_rate)
    creds = find_credentials(ref.registry, ref.repository, auth_file=args.auth_file)
    transport = Transport(ca_file=args.ca, insecure=args.insecure, timeout=args.timeout,
                          deadline=args.deadline, min_rate=args.min_rate * 1024,
                          rate_window=args.rate_window)
    # Where blobs were seen, across runs: lets a push mount instead of upload (a hint only).
    locations = BlobLocations(default_cache_file())
    return RegistryClient(ref.api_host, transport, creds, retries=args.retries,
                          locations=locations)




