"""features: what this runtime supports, in the runtime-spec features format."""
import sys

from smith.runtime import options as o


def main(argv: list, g=None) -> int:
    import json
    from smith.runtime import caps, rootfs, seccomp, spec
    _, args = o.parse("features", argv, {})
    o.positional("features", args, [])
    features = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": list(spec.HOOKS),
        "mountOptions": sorted(set(rootfs.FLAGS) | set(rootfs.PROPAGATION)),
        "linux": {
            "namespaces": sorted(spec.NAMESPACES),
            "capabilities": caps.NAMES,
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True, "actions": sorted(a for a in seccomp.ACTIONS if a != "SCMP_ACT_NOTIFY"),
                        "operators": sorted(seccomp.OPS), "archs": sorted(seccomp.ARCHES),
                        "knownFlags": sorted(seccomp.FLAGS), "supportedFlags": sorted(seccomp.FLAGS)},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.smith.runtime.version": "0.1.0"},
    }
    sys.stdout.write(json.dumps(features, indent=2) + "\n")
    return 0
