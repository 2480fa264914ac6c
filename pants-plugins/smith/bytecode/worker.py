"""Runs INSIDE the image's interpreter (any CPython 3): compile files to unchecked-hash .pyc.

argv: MANIFEST.json OUTDIR. The manifest is a list of [source file, path inside the image];
the bytecode of item i goes to OUTDIR/i. Prints one JSON object on stdout: the interpreter's
`cache_tag` and the items that did not compile (a module with a syntax error cannot be imported
anyway, so the build keeps going, as compileall does). Standard library only; imports nothing
from smith (this file is run by another interpreter than smith's).
"""
import importlib.util
import json
import os
import sys
from importlib._bootstrap_external import _code_to_hash_pyc


def main(manifest: str, outdir: str) -> int:
    with open(manifest, encoding="utf-8") as f:
        items = json.load(f)
    failed = []
    for i, (source_file, image_path) in enumerate(items):
        with open(source_file, "rb") as f:
            source = f.read()
        try:
            # co_filename is the path inside the image: tracebacks name the file users see
            code = compile(source, image_path, "exec", dont_inherit=True, optimize=0)
        except (SyntaxError, ValueError) as e:
            failed.append([image_path, "%s: %s" % (type(e).__name__, e)])
            continue
        data = _code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False)
        del code  # nothing of this file stays alive into the next one's marshal
        fd = os.open(os.path.join(outdir, str(i)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    json.dump({"cache_tag": sys.implementation.cache_tag, "failed": failed}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
