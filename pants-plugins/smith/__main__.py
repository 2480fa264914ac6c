from smith.cli import run

run()
