"""Load a repository's package universe and parse requests, whichever the kind."""
from typing import List, Optional

from smith.packages.model import Relation
from smith.packages.repo_config import RepoConfig
from smith.packages.universe import Universe


def load_universe(repo: RepoConfig, cache_dir: Optional[str] = None) -> Universe:
    if repo.kind == "deb":
        from smith.packages import deb_repo
        return deb_repo.load(repo, cache_dir)
    from smith.packages import rpm_repo
    return rpm_repo.load(repo, cache_dir)


def parse_request(kind: str, text: str) -> List[List[Relation]]:
    if kind == "deb":
        from smith.packages import deb_repo
        return deb_repo.parse_relations(text, "requested package %r" % text)
    from smith.packages import rpm_repo
    return rpm_repo.parse_requirement(text, "requested package %r" % text)
