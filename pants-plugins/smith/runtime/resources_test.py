"""linux.resources that runc 1.1.5 applies or refuses on this host (cgroup v1 + the v2 tree):
each bundle is run by smith-runtime and by runc and the outcomes compared."""
import os

import pytest

from smith.testutil import runtime_bundle as tb
from smith.testutil.debian import require_tools


@pytest.fixture(scope="module")
def app():
    require_tools("runc", "busybox")
    return tb.cached_zipapp()


def run_both(app, tmp_path, script, resources, parent="smith-test/"):
    def edit(c):
        c["linux"]["resources"] = resources
        c["linux"]["cgroupsPath"] = "/%sres-%d" % (parent, os.getpid())
    bundle = tb.bundle(str(tmp_path / "bundle"), args=["sh", "-c", script], edit=edit)
    out = {}
    for name, binary in (("smith", app), ("runc", "runc")):
        root = str(tmp_path / ("root-" + name))
        cid = "res-%s-%d" % (name, os.getpid())
        out[name] = tb.runtime(binary, root, "run", cid, cwd=bundle)
        assert not tb.leftovers(cid), out[name].stderr
        assert not [d for d in os.listdir("/sys/fs/cgroup") if os.path.exists(
            "/sys/fs/cgroup/%s/%sres-%d" % (d, parent, os.getpid()))], out[name].stderr
        assert not os.path.isdir(root) or not os.listdir(root)
    return out


def test_swappiness_and_oom_killer_written_like_runc(app, tmp_path):
    res = run_both(app, tmp_path, "cat /sys/fs/cgroup/memory/memory.swappiness; "
                   "grep oom_kill_disable /sys/fs/cgroup/memory/memory.oom_control",
                   {"memory": {"swappiness": 17, "disableOOMKiller": True}})
    assert res["runc"].returncode == 0, res["runc"].stderr
    assert (res["smith"].returncode, res["smith"].stdout) == (0, res["runc"].stdout), res["smith"].stderr
    assert res["smith"].stdout == "17\noom_kill_disable 1\n"


def _block_device():
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "zram", "ram")) and os.path.exists("/sys/block/%s/dev" % name):
            with open("/sys/block/%s/dev" % name) as f:
                return [int(x) for x in f.read().split(":")]
    pytest.skip("no block device")


def test_blkio_weight_and_throttle_written_like_runc(app, tmp_path):
    """The weight goes to blkio.weight (CFQ) or blkio.bfq.weight (BFQ), whichever this kernel has."""
    major, minor = _block_device()
    script = ("cat /sys/fs/cgroup/blkio/blkio.weight 2>/dev/null || cat /sys/fs/cgroup/blkio/blkio.bfq.weight; "
              "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device")
    res = run_both(app, tmp_path, script, {"blockIO": {
        "weight": 300, "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}]}})
    assert res["runc"].returncode == 0, res["runc"].stderr
    assert (res["smith"].returncode, res["smith"].stdout) == (0, res["runc"].stdout), res["smith"].stderr
    assert res["smith"].stdout.split() == ["300", "%d:%d" % (major, minor), "1048576"]


def _controller_missing(name):
    return not any(name in d.split(",") for d in os.listdir("/sys/fs/cgroup"))


def _page_size_missing():
    have = os.listdir("/sys/kernel/mm/hugepages") if os.path.isdir("/sys/kernel/mm/hugepages") else []
    return "hugepages-64kB" not in have


def test_realtime_cpu_written_like_runc(app, tmp_path):
    if not os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"):
        pytest.skip("no real-time group scheduling in this kernel")
    res = run_both(app, tmp_path, "cat /sys/fs/cgroup/cpu/cpu.rt_period_us /sys/fs/cgroup/cpu/cpu.rt_runtime_us",
                   {"cpu": {"realtimePeriod": 100000, "realtimeRuntime": 1000}},
                   parent="")  # a new child of the root: intermediate cgroups have no real-time budget
    assert res["runc"].returncode == 0, res["runc"].stderr
    assert (res["smith"].returncode, res["smith"].stdout) == (0, res["runc"].stdout), res["smith"].stderr
    assert res["smith"].stdout.split() == ["100000", "1000"]


def _hybrid():
    return any(d != "unified" and os.path.ismount("/sys/fs/cgroup/" + d) for d in os.listdir("/sys/fs/cgroup"))


REFUSED = [
    ("rdma", {"rdma": {"mlx5_0": {"hcaHandles": 3}}}, "linux.resources.rdma.mlx5_0", lambda: _controller_missing("rdma")),
    ("unified on v1", {"unified": {"memory.high": "100000000"}}, "linux.resources.unified", _hybrid),
    ("net_cls", {"network": {"classID": 0x100001}}, "linux.resources.network.classID",
     lambda: _controller_missing("net_cls")),
    ("net_prio", {"network": {"priorities": [{"name": "eth0", "priority": 5}]}},
     "linux.resources.network.priorities[0]", lambda: _controller_missing("net_prio")),
    ("hugetlb", {"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}, "linux.resources.hugepageLimits[0]",
     lambda: _controller_missing("hugetlb")),
    ("hugetlb page size", {"hugepageLimits": [{"pageSize": "64KB", "limit": 65536}]},
     "linux.resources.hugepageLimits[0].pageSize", _page_size_missing),
    ("blkio leaf weight", {"blockIO": {"leafWeight": 500}}, "linux.resources.blockIO.leafWeight",
     lambda: os.path.isdir("/sys/fs/cgroup/blkio") and not os.path.exists("/sys/fs/cgroup/blkio/blkio.weight")),
    ("blkio weight device", {"blockIO": {"weightDevice": [{"major": 1, "minor": 3, "weight": 500}]}},
     "linux.resources.blockIO.weightDevice[0]", lambda: True),
    ("swappiness range", {"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness", lambda: True),
    ("swappiness type", {"memory": {"swappiness": "high"}}, "linux.resources.memory.swappiness", lambda: True),
    ("classID type", {"network": {"classID": -1}}, "linux.resources.network.classID", lambda: True),
]


@pytest.mark.parametrize("name,resources,field,applies", REFUSED, ids=[r[0] for r in REFUSED])
def test_unappliable_settings_refused_like_runc(app, tmp_path, name, resources, field, applies):
    """What the host cannot apply is refused at create, as runc refuses it, and nothing is left."""
    if not applies():
        pytest.skip("this host can apply %s" % name)
    res = run_both(app, tmp_path, "echo ran", resources)
    assert res["runc"].returncode == 1 and res["runc"].stdout == "", res["runc"].stdout
    assert res["smith"].returncode == 1 and res["smith"].stdout == "", res["smith"].stdout
    assert res["smith"].stderr.startswith("smith-runtime: error: ") and field in res["smith"].stderr, \
        res["smith"].stderr
    assert "Traceback" not in res["smith"].stderr
