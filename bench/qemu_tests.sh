#!/bin/sh
# Issue 19: what running a test's arm64 image through qemu-user-static costs next to the host's
# amd64 image (as root). 1) the launcher's smoke test of Debian's busybox-static, paired with
# farm-bench (A = arm64 under qemu, B = amd64 native); 2) `pants test --test-force examples/redis:`
# with every platform vs linux/amd64 only (each test Process' time), 3 rounds each, in turn. Prints the load before/after.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-/tmp/devvenv/bin/python}
export PYTHONPATH="$PWD/pants-plugins"
echo "commit $(git rev-parse --short HEAD); load before: $(cat /proc/loadavg)"
LAYOUT=$("$PY" -c 'from smith.testutil.qemu import busybox_index, require_emulation
require_emulation("linux/arm64"); print(busybox_index())' | tail -n 1)  # the lock prints pins first
STORE=$(mktemp -d /tmp/smith-bench-store-XXXXXX); chmod 711 "$STORE"
test_cmd() { echo "$PY -m smith.launch test --layout $LAYOUT --store $STORE --platform $1 --whole-command -- /bin/busybox sha256sum /bin/busybox"; }
# shellcheck disable=SC2046
farm-bench -n 20 --warmup 3 --timeout 300 --vs "$(test_cmd linux/amd64)" -- $(test_cmd linux/arm64)
rm -rf "$STORE"
for round in 1 2 3; do  # each test Process' own time (Pants prints it); Pants start-up left out
  for platforms in "" "--smith-test-platforms=linux/amd64"; do
    ./pants --no-pantsd test --test-force $platforms examples/redis: 2>&1 \
      | sed -n "s|^. \(examples[^ ]*\) succeeded in \(.*\)|round $round ${platforms:-every-platform}: \1 \2|p"
  done
done
echo "load after: $(cat /proc/loadavg)"
