"""`./pants smith-outdated ::`: for every lockfile of the given smith_packages targets, the pins
that have a newer version in the repository (or whose file is gone), by `smith outdated`."""
import json
from dataclasses import dataclass
from typing import Tuple

from pants.engine.console import Console
from pants.engine.fs import Digest, DigestContents, MergeDigests, PathGlobs
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.process import ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, goal_rule, rule
from pants.engine.target import Targets
from pants.option.option_types import BoolOption
from pants.util.logging import LogLevel
from pants.util.strutil import help_text

from smith.plugin.target_types.packages import SmithPackagesTarget
from smith.plugin.rules.util.packages import (
    RepositoryRequest,
    ResolvedRepository,
    SmithPackagesError,
    SmithPackagesFieldSet,
    regenerate_hint,
    repository_inputs,
)
from smith.plugin.rules.util.process import SmithProcess


class SmithOutdatedSubsystem(GoalSubsystem):
    name = "smith-outdated"
    help = help_text(
        """
        List, per smith_packages lockfile, every pinned package that has a newer version in its
        repository (name, locked, available) or whose pinned file is gone from it. Reads the
        repositories again (network); never changes a lockfile: update with
        `./pants generate-lockfiles --resolve=NAME`.
        """
    )

    check = BoolOption(
        default=False,
        help="Exit non-zero (3) when any pin is outdated or gone: for CI.",
    )


class SmithOutdatedGoal(Goal):
    subsystem_cls = SmithOutdatedSubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


@dataclass(frozen=True)
class OutdatedReport:
    text: str
    entries: Tuple[Tuple[str, str, str, bool], ...]  # (name, locked, available, gone)


@rule(desc="Checking a smith lockfile for newer versions", level=LogLevel.DEBUG)
async def outdated_report(field_set: SmithPackagesFieldSet) -> OutdatedReport:
    lock = field_set.lockfile_path
    lock_digest = await Get(Digest, PathGlobs([lock]))
    if not await Get(DigestContents, Digest, lock_digest):
        raise SmithPackagesError(
            f"{field_set.address}: the lockfile {lock} does not exist; {regenerate_hint(field_set.resolve_name)}."
        )
    repo = await Get(ResolvedRepository, RepositoryRequest, field_set.repository_request())
    argv = ["outdated", "--json", "outdated.json"]
    keyring = repo.config.get("keyring")
    if keyring:
        argv += ["--keyring", keyring]
    argv.append(lock)
    result = await Get(
        ProcessResult,
        SmithProcess,
        SmithProcess.of(
            argv,
            description=f"Checking {lock} for newer versions",
            input_digest=await Get(Digest, MergeDigests([await repository_inputs(repo), lock_digest])),
            output_files=["outdated.json"],
            cache_scope=ProcessCacheScope.PER_SESSION,  # the repository moves on
            timeout_seconds=900,
        ),
    )
    contents = await Get(DigestContents, Digest, result.output_digest)
    entries = json.loads(contents[0].content)
    return OutdatedReport(
        result.stdout.decode(),
        tuple((e["name"], e["locked"], e["available"] or "", bool(e["gone"])) for e in entries),
    )


@goal_rule
async def smith_outdated(console: Console, targets: Targets, subsystem: SmithOutdatedSubsystem) -> SmithOutdatedGoal:
    field_sets = [SmithPackagesFieldSet.create(t) for t in targets if isinstance(t, SmithPackagesTarget)]
    reports = await MultiGet(Get(OutdatedReport, SmithPackagesFieldSet, fs) for fs in field_sets)
    outdated = 0
    for report in reports:
        console.print_stdout(report.text.rstrip("\n"))
        outdated += len(report.entries)
    if not field_sets:
        console.print_stderr("No smith_packages targets among the given targets.")
    elif outdated:
        console.print_stderr(
            f"{outdated} pin(s) outdated or gone; update with `./pants generate-lockfiles --resolve=NAME`."
        )
    return SmithOutdatedGoal(exit_code=3 if outdated and subsystem.check else 0)


def rules():
    return collect_rules()
