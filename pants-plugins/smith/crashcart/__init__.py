"""crashcart: debug a running microcontainer with tools it does not ship.

Build time (needs pyelftools and Debian's patchelf):
  toolbox.py   `python -m smith.crashcart.toolbox --output DIR TREE...`: Debian package trees
               (smith extract tree tars or directories) -> DIR with bin/ and lib/, every ELF
               relocated under /dev/crashcart (PT_INTERP, DT_RUNPATH, DF_1_NODEFLIB).
Run time (`python3 -m smith.crashcart`, the dist/crashcart zipapp; stdlib + ctypes only):
  cli.py       argument parsing and the attach -> run -> detach sequence.
  target.py    container id (smith-runtime or runc state) or host PID -> live init pid.
  attach.py    open_tree/move_mount the toolbox read-only at /dev/crashcart in the target's
               mount namespace; detach it again.
  enter.py     run the command in the target's namespaces and cgroups as its root, forward
               signals, return its exit status.
  syscalls.py  the Linux calls only crashcart needs; the shared ones are in smith/linux.py.
Tests: *_test.py, with helpers in smith/testutil/crashcart.py.
"""

# What the crashcart zipapp (//:crashcart) holds, as `only` paths of the smith package: the
# smith_command rule reads it, so the list lives next to the code it names.
ZIPAPP_ONLY = ("smith/__init__.py", "smith/errors.py", "smith/linux.py", "smith/safe_json.py", "smith/crashcart")
