import sys

from smith.cli import main

sys.exit(main())
