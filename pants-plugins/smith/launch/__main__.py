import sys

from smith.launch.cli import main

sys.exit(main())
