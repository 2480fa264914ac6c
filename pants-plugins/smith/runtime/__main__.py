import sys

from smith.runtime.main import main

sys.exit(main(sys.argv[1:]))
