"""Regenerate the target/goal/option reference in README.md from `./pants help-all`.

    ./pants --no-pantsd help-all > /tmp/help.json
    python3 build-support/readme_reference.py /tmp/help.json README.md        # rewrite
    python3 build-support/readme_reference.py --check /tmp/help.json README.md

The reference lives between the BEGIN/END markers, so README prose stays hand-written while
the field list can never drift from the help text in the code (tests/e2e/readme_test.py checks).
"""
import json
import sys

BEGIN = "<!-- BEGIN GENERATED REFERENCE (build-support/readme_reference.py) -->"
END = "<!-- END GENERATED REFERENCE -->"
COMMON = {"tags", "description"}
# The backend package that registers smith (pants.toml backend_packages).
PROVIDERS = {"smith.plugin"}


def _one_line(text: str) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def render(help_all: dict) -> str:
    out = [BEGIN, "", "### Target types", ""]
    targets = help_all["name_to_target_type_info"]
    for alias in sorted(a for a, t in targets.items() if t.get("provider") in PROVIDERS):
        t = targets[alias]
        out += [f"#### `{alias}`", "", _one_line(t["description"]), "",
                "| field | type | default | what it does |", "|---|---|---|---|"]
        for f in sorted(t["fields"], key=lambda f: (not f["required"], f["alias"])):
            if f["alias"] in COMMON:
                continue
            default = "**required**" if f["required"] else f"`{_one_line(str(f['default']))}`"
            out.append(f"| `{f['alias']}` | `{_one_line(f['type_hint'])}` | {default} | {_one_line(f['description'])} |")
        out.append("")
    out += ["### Goals and options added by smith", ""]
    goals = help_all["name_to_goal_info"]
    for name in sorted(g for g, info in goals.items() if info.get("provider") in PROVIDERS):
        out += [f"- `./pants {name}`: {_one_line(goals[name]['description'])}"]
    scopes = help_all["scope_to_help_info"]
    # Only smith's own scopes: help-all credits the global scope to the last backend loaded.
    for scope in sorted(s for s, info in scopes.items() if s.startswith("smith") and info.get("provider") in PROVIDERS):
        # [smith-tool]'s advanced options are Pants' generic Python-tool ones: left to `./pants help`.
        advanced = [] if scope == "smith-tool" else scopes[scope].get("advanced", [])
        options = scopes[scope].get("basic", []) + advanced
        if not options:
            continue
        out += ["", f"`[{scope}]` options:", ""]
        for opt in options:
            flag = opt["config_key"] if "config_key" in opt else opt["display_args"][0]
            out.append(f"- `{flag}` (default `{opt.get('default')}`): {_one_line(opt.get('help', ''))}")
    out += ["", END]
    return "\n".join(out)


def main(argv) -> int:
    check = argv[:1] == ["--check"]
    help_path, readme_path = argv[1:] if check else argv
    with open(help_path) as f:
        reference = render(json.load(f))
    with open(readme_path) as f:
        readme = f.read()
    if BEGIN not in readme or END not in readme:
        print(f"{readme_path}: no generated-reference markers", file=sys.stderr)
        return 1
    head, rest = readme.split(BEGIN, 1)
    new = head + reference + rest.split(END, 1)[1]
    if check:
        if new != readme:
            print(f"{readme_path}: the reference is out of date; run build-support/readme_reference.py", file=sys.stderr)
            return 1
        return 0
    with open(readme_path, "w") as f:
        f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
