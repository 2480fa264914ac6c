#!/bin/sh
# Rebuild examples/hello's committed static programs from their sources, byte for byte:
#   bin/hello        (linux/amd64) from hello.S with gcc
#   arm64/bin/hello  (linux/arm64) from hello-arm64.S with binutils-aarch64-linux-gnu
# `./rebuild.sh --check` rebuilds into a temp dir and fails if a committed binary differs.
# Needs: apt-get install gcc binutils-aarch64-linux-gnu
set -eu
cd "$(dirname "$0")"
out=.
if [ "${1:-}" = "--check" ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out/bin" "$out/arm64/bin"
gcc -nostdlib -static -s -Wl,-n -Wl,--build-id=none -o "$out/bin/hello" hello.S
aarch64-linux-gnu-as -o "$out/hello-arm64.o" hello-arm64.S
aarch64-linux-gnu-ld -static -s -n --build-id=none -o "$out/arm64/bin/hello" "$out/hello-arm64.o"
rm -f "$out/hello-arm64.o"
if [ "$out" != . ]; then
    cmp bin/hello "$out/bin/hello"
    cmp arm64/bin/hello "$out/arm64/bin/hello"
    echo "bin/hello and arm64/bin/hello are rebuilt byte for byte"
fi
