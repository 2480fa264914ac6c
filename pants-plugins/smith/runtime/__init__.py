"""smith-runtime: a runc-compatible OCI runtime in pure Python (stdlib + ctypes), railcar's role.

`python3 -I -S -m smith.runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...`
with runc's commands: create, start, run, state, kill, delete, exec, list, ps, features.
Nothing here imports third-party code or other smith subpackages (only smith.errors and
smith.linux's start_time), so the package runs as a zipapp on the machine's /usr/bin/python3. Everything on the start path is
imported lazily and kept lean (no argparse, json, ctypes, signal, subprocess, typing).

Layout: main.py (global options, dispatch) -> commands/<name>.py (one per command) ->
container.py (lifecycle, runtime side) / execproc.py (exec) -> init.py (container side:
namespaces, rootfs.py with inroot.py (paths in the rootfs through descriptors), identity.py,
console.py, seccomp.py) with cgroups.py, hooks.py,
spec.py (config.json checks), state.py (state dir + flock), libc.py (syscalls).
The test/bench helpers (zipapp build, busybox bundle) are smith/testutil/runtime_bundle.py.
"""

# What the runtime's zipapp holds, as `only` paths of the smith package: //:smith-runtime, the
# runtime the Pants rules install for tests and runs, and the tests all pack this list.
ZIPAPP_ONLY = ("smith/__init__.py", "smith/errors.py", "smith/linux.py", "smith/atomic.py",
               "smith/runtime")
