"""Cut an existing (untrusted) image down to one program: safe unpack, ELF closure, tree tar.

The image is unpacked by the safe unpacker into a temp dir under `workdir` (removed always);
the program is the image's own Entrypoint[0] (or Cmd[0]) unless overridden, found through
the image's PATH inside the root. Its closure plus the `paths` globs, minus `excludes`, is
written as a deterministic tree tar; the image config that the minimized image keeps is
returned in `smith image --config` form (entrypoint, cmd, env, workdir, labels, exposed_ports).
"""
import os
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Set

from smith.elf.closure import DEFAULT_PATH, Closure, compute_closure
from smith.elf.nss import DEFAULT_USER, User, nss_files
from smith.elf.rootfs import RootFS, glob_in_root, kept_paths, matches_or_under
from smith.elf.treetar import remove_tree, write_tree_tar
from smith.errors import SmithError, for_terminal
from smith.oci.image_source import open_image
from smith.oci.sourceless import check_globs, make_sourceless
from smith.oci.trace import Trace, kept_by_trace
from smith.oci.unpack import apply_image
from smith.registry.platforms import Platform
from smith.text import PATH_MAX, printable
from smith.untar import Limits


def env_dict(items: Sequence[str], what: str) -> Dict[str, str]:
    """["K=V", ...] (image Env or --env) -> {K: V}; later items win, as in a runtime."""
    out: Dict[str, str] = {}
    for kv in items:
        if not isinstance(kv, str) or "=" not in kv or kv.startswith("="):
            raise SmithError("%s: %r is not NAME=VALUE" % (what, kv))
        k, v = kv.split("=", 1)
        out[k] = v
    return out


def kept_config(source: Dict[str, Any], entrypoint: Optional[List[str]], cmd: Optional[List[str]],
                env: Dict[str, str]) -> Dict[str, Any]:
    """The config of the minimized image: the source's Env, WorkingDir, ExposedPorts, Labels,
    Entrypoint and Cmd, with overrides. A new entrypoint drops the source's Cmd (as Docker)."""
    if entrypoint is not None:
        new_entry, new_cmd = entrypoint, cmd
    else:
        new_entry = source.get("Entrypoint")
        new_cmd = cmd if cmd is not None else source.get("Cmd")
    merged_env = env_dict(source.get("Env") or [], "image config Env")
    merged_env.update(env)
    cfg: Dict[str, Any] = {
        "entrypoint": list(new_entry) if new_entry else None,
        "cmd": list(new_cmd) if new_cmd else None,
        "env": merged_env,
        "workdir": source.get("WorkingDir") or None,
        "labels": dict(source.get("Labels") or {}),
        "exposed_ports": sorted(source.get("ExposedPorts") or {}),
    }
    return {k: v for k, v in cfg.items() if v is not None}


def program_of(cfg: Dict[str, Any], source_name: str) -> str:
    argv = cfg.get("entrypoint") or cfg.get("cmd")
    if not argv:
        raise SmithError("%s has neither Entrypoint nor Cmd; give the program to keep with "
                         "--entrypoint (smith_minimize: field `entrypoint`)" % source_name)
    return argv[0]


def _kept_paths(fs: RootFS, patterns: Sequence[str]) -> Set[str]:
    """Entries that `paths` globs name: the matches (whole subtrees for dirs) and their links
    (rootfs.kept_paths: inside the root only; special files never)."""
    out: Set[str] = set()
    for pattern in patterns:
        if not pattern.startswith("/"):
            raise SmithError("paths glob %r must be absolute inside the image, e.g. /etc/ssl/**"
                             % pattern)
        matches = glob_in_root(fs, pattern)
        if not matches:
            raise SmithError("paths glob %r matches nothing in the image; fix or remove it"
                             % pattern)
        out.update(kept_paths(fs, matches))
    return out


def _program_path(fs: RootFS, program: str, env: Dict[str, str]) -> Optional[str]:
    """Where the closure found the program: as given, or the first hit on the image's PATH."""
    if "/" in program:
        found = fs.resolve(program)
        return found.path if found else None
    for d in env.get("PATH", DEFAULT_PATH).split(":"):
        found = fs.resolve(d.rstrip("/") + "/" + program) if d else None
        if found is not None and found.is_file:
            return found.path
    return None


def _kept_by_traces(root: str, program: str, env: Dict[str, str], nss: bool,
                    traces: Sequence[Trace]) -> Set[str]:
    closure = Closure(root, env)
    closure.add_program(program)
    if nss:
        closure.add_nss()
    warnings: List[str] = []
    kept = kept_by_trace(closure, list(traces), warnings.append)
    for w in sorted(set(warnings + closure.warnings)):
        print("smith minimize: warning: %s" % for_terminal(w), file=sys.stderr)
    return kept


def minimize(source: str, output_tar: str, entrypoint: Optional[List[str]] = None,
             cmd: Optional[List[str]] = None, paths: Sequence[str] = (),
             excludes: Sequence[str] = (), nss: bool = False, user: Optional[User] = None,
             env: Optional[Dict[str, str]] = None, workdir: Optional[str] = None,
             limits: Optional[Limits] = None, traces: Sequence[Trace] = (),
             platform: Optional[Platform] = None,
             python_sourceless: Sequence[str] = ()) -> Dict[str, Any]:
    """Write the minimized tree of SOURCE (PATH or PATH:TAG) to `output_tar`; returns the kept
    config. `workdir` is where the temp root goes (default: the cwd). `traces` (of `smith
    trace`) add what a workload used, with the closures of its ELFs (oci/trace.py). Of a
    multi-platform SOURCE, the image for `platform` is minimized (default: the host's).
    Kept unchecked-hash `__pycache__` .pyc under the `python_sourceless` globs replace their
    .py as sourceless .pyc (oci/sourceless.py)."""
    check_globs(python_sourceless)
    parent = os.path.abspath(workdir or os.getcwd())
    tmp = tempfile.mkdtemp(prefix=".smith-minimize-", dir=parent)
    try:
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        img = open_image(source, platform=platform)
        try:
            apply_image(img, root, limits)
            source_cfg = (img.config.get("config") or {})
        finally:
            img.store.close()
        cfg = kept_config(source_cfg, entrypoint, cmd, dict(env or {}))
        program = program_of(cfg, source)
        result = compute_closure(root, [program], env=cfg.get("env") or {}, nss=nss)
        fs = RootFS(root)
        entries = set(result.paths) | _kept_paths(fs, paths)
        if traces:
            entries |= _kept_by_traces(root, program, cfg.get("env") or {}, nss, traces)
        dropped = sorted(p for p in entries if matches_or_under(p, excludes))
        kept = sorted(entries - set(dropped))
        program_path = _program_path(fs, program, cfg.get("env") or {})
        if program_path and program_path in dropped:
            raise SmithError("excludes drop the program %s itself; narrow the exclude globs"
                             % program_path)
        for p in dropped:
            if p in result.paths and p != program_path:
                print("smith minimize: warning: excludes drop %s, which the closure of %s needs"
                      % (printable(p, PATH_MAX), printable(program, PATH_MAX)), file=sys.stderr)
        generated = nss_files(user or DEFAULT_USER) if nss else {}
        if python_sourceless:
            traced = set().union(*(t.paths for t in traces)) if traces else set()
            kept_set, pycs = make_sourceless(root, kept, python_sourceless, traced)
            kept = sorted(kept_set)
            generated.update(pycs)
        write_tree_tar(output_tar, root, kept, generated)
        return cfg
    finally:
        remove_tree(tmp)
