"""`python3 -m smith.crashcart` (the dist/crashcart zipapp): see smith.crashcart.cli."""
import sys

from smith.crashcart.cli import main
from smith.errors import SmithError, for_terminal

try:
    code = main(sys.argv[1:])
except SmithError as e:
    print("crashcart: error: %s" % for_terminal(e), file=sys.stderr)
    code = 1
sys.stdout.flush()
sys.exit(code)
