import gc
import posix  # not os: see posixos.py
import sys

gc.disable()  # a short-lived process: collecting the import-time garbage only costs time

from smith.runtime.main import main  # noqa: E402

code = main(sys.argv[1:])
sys.stdout.flush()
sys.stderr.flush()
posix._exit(code)  # skip interpreter teardown: nothing is left to clean up, and it costs ~1 ms
