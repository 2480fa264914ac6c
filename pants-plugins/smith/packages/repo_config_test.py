"""A repository file (`smith lock --repo`) is input like any other: hostile ones are clear errors."""
import pytest

from smith import cli
from smith.packages import repo_config
from smith.testutil import hostile_json

GOOD = {"kind": "deb", "url": "http://127.0.0.1:9/debian", "suites": ["bookworm"]}


@pytest.mark.parametrize("content, message", [
    (b'["deb"]', "expected a JSON object, found array"),
    (b'{"kind": "deb", "url": "http://x", "suites": "bookworm"}',
     "field 'suites' must be a non-empty list of strings"),
    (b'{"kind": "rpm", "url": "http://x", "trusted": "yes"}', "field 'trusted' must be true or false"),
    (hostile_json.deeply_nested(), hostile_json.DEEP_MESSAGE),
    (hostile_json.padded(GOOD, repo_config.MAX_REPO_FILE_BYTES),
     hostile_json.oversized_message(repo_config.MAX_REPO_FILE_BYTES)),
    (hostile_json.NOT_JSON, hostile_json.NOT_JSON_MESSAGE),
], ids=["top-level-array", "suites-a-string", "trusted-a-string", "deep", "oversized", "not-json"])
def test_a_hostile_repository_file_is_a_clear_error(tmp_path, capsys, content, message):
    (tmp_path / "repo.json").write_bytes(content)
    out = tmp_path / "lock.json"
    # No network: every case is refused before the repository is asked for anything.
    assert cli.main(["lock", "--repo", str(tmp_path / "repo.json"), "--output", str(out), "hello"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("smith lock: error: %s: " % (tmp_path / "repo.json")), err
    assert message in err, err
    assert not out.exists()
