"""`smith.launch test`: run an image once with its output captured and check the exit code
and output; on failure print why and the container's stdout and stderr. An index image is run
once per platform (see each_platform: foreign ones through qemu, SKIP where that cannot be)."""
import re
import sys
from typing import List

from smith.errors import SmithError
from smith.launch import args, container, each_platform


def _regex(pattern: str, option: str) -> "re.Pattern":
    try:
        return re.compile(pattern, re.MULTILINE)
    except re.error as e:
        raise SmithError("%s %r is not a valid regular expression: %s" % (option, pattern, e))


def check(result: container.Result, expect_exit: int, stdout_re, stderr_re) -> List[str]:
    """What is wrong with `result`, one line each (empty: the test passed)."""
    problems = []
    if result.timed_out:
        problems.append("the container did not finish before the timeout")
    elif result.exit_code != expect_exit:
        problems.append("exit code %d, expected %d" % (result.exit_code, expect_exit))
    out = result.stdout.decode("utf-8", "replace")
    err = result.stderr.decode("utf-8", "replace")
    if stdout_re is not None and not stdout_re.search(out):
        problems.append("stdout does not match %r" % stdout_re.pattern)
    if stderr_re is not None and not stderr_re.search(err):
        problems.append("stderr does not match %r" % stderr_re.pattern)
    return problems


def _show(name: str, data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    print("----- container %s (%d bytes) -----" % (name, len(data)))
    print(text, end="" if text.endswith("\n") or not text else "\n")


def main(argv: List[str]) -> int:
    p = args.parser("smith-launch test", __doc__)
    p.add_argument("--expect-exit", type=int, default=0, metavar="N", help="expected exit code (default 0)")
    p.add_argument("--expect-stdout", metavar="REGEX", help="a regex stdout must contain (re.search, MULTILINE)")
    p.add_argument("--expect-stderr", metavar="REGEX", help="a regex stderr must contain (re.search, MULTILINE)")
    each_platform.add_options(p, many=True)
    p.set_defaults(timeout=30.0)
    ns = args.parse(p, argv)
    stdout_re = _regex(ns.expect_stdout, "--expect-stdout") if ns.expect_stdout is not None else None
    stderr_re = _regex(ns.expect_stderr, "--expect-stderr") if ns.expect_stderr is not None else None
    args.exit_on_sigterm()
    container.require_root()
    platforms, lacking = each_platform.selected(ns.layout, ns.platform)

    def one(platform, label: str) -> int:
        image, opts, settings = args.load(ns, tty=False, platform=platform)
        result = container.run(image, opts, settings, capture=True, timeout=ns.timeout, write_dir=ns.write)
        problems = check(result, ns.expect_exit, stdout_re, stderr_re)
        name = "%s %s" % (label, ns.layout) if label else ns.layout
        if not problems:
            print("PASS %s (exit %d)" % (name, result.exit_code))
            return 0
        print("FAIL %s" % name)
        for line in problems:
            print("  " + line)
        _show("stdout", result.stdout)
        _show("stderr", result.stderr)
        sys.stdout.flush()
        return 1

    return each_platform.run_all(platforms, ns.emulation, sys.stdout, one, lacking)
