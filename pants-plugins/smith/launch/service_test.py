"""`python -m smith.launch service`: busybox services (httpd, nc) in containers, as root, with
runc and with smith's own runtime; every test also checks that nothing is left behind."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from smith.launch import service_spec
from smith.launch.service_spec import SpecError
from smith.testutil.launch import busybox_image, launch_cmd, leftovers, new_store, remove_store, smith_env
from smith.testutil.debian import require_tools

BB = "/bin/busybox"
# A web server on 8080 (serving /www of the image and /write) and an echo server on 7000.
# Readiness is port 8080, so the echo server on 7000 must listen before httpd starts (once, a
# loaded CI host ran the TCP check before nc was listening).
SERVE = ("echo starting; trap 'echo got TERM; exit 3' TERM; busybox nc -ll -p 7000 -e busybox cat & "
         "until busybox netstat -ltn | busybox grep -q ':7000 '; do busybox usleep 10000; done; "
         "busybox httpd -f -p 127.0.0.1:8080 -h /www & wait")


@pytest.fixture(scope="module")
def layout():
    require_tools("runc", "busybox")
    return busybox_image(base_files={"www/index.html": "hello web\n<p>second line</p>\n"}) + ":latest"


@pytest.fixture(scope="module")
def smith_runtime():
    """The runtime zipapp as //:smith-runtime builds it, where mapped users can run it."""
    from smith.testutil.runtime_bundle import build_zipapp
    d = new_store()
    path = build_zipapp(os.path.join(d, "smith-runtime"))
    os.chmod(path, 0o755)
    yield path
    remove_store(d)


def spec_file(tmp_path, **spec):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return str(path)


def service(store, spec_path, runtime="runc", timeout=120):
    return subprocess.run(launch_cmd("service", "--spec", spec_path, "--store", store, "--runtime", runtime),
                          env=smith_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def web(layout, **more):
    spec = dict(name="bb-web", layout=layout, command=[BB, "sh", "-c", SERVE], ready_port=8080,
                ready_log="^starting$", expect_stop_exit=3)
    spec.update(more)
    return spec


@pytest.mark.parametrize("runtime", ["runc", "smith"])
def test_checks_pass_and_phases_are_shown(store, layout, tmp_path, runtime, request):
    rt = request.getfixturevalue("smith_runtime") if runtime == "smith" else "runc"
    path = spec_file(tmp_path, **web(
        layout,
        tcp_checks=[{"send": "PING\r\n", "expect": "^PING\r$", "port": 7000}],
        http_checks=[{"path": "/index.html", "status": 200, "body": "^<p>second line</p>$",
                      "headers": {"Content-Type": "text/html"}},
                     {"path": "/missing", "status": 404}],
        client={"layout": layout, "command": [BB, "wget", "-qO-", "http://127.0.0.1:8080/"],
                "expect_stdout": "^hello web$"}))
    proc = service(store, path, rt)
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    assert out.startswith("PASS bb-web in ")
    for phase in ("start", "ready", "checks", "stop"):
        assert " %s " % phase in out.splitlines()[0]
    assert "ok tcp_checks[0]" in out and "ok http_checks[1]" in out and "ok client" in out
    assert "stop: SIGTERM -> exit 3" in out


def test_failed_tcp_check_shows_what_was_sent_and_what_came_back(store, layout, tmp_path):
    path = spec_file(tmp_path, **web(layout, tcp_checks=[{"send": "PING\r\n", "expect": "PANG", "port": 7000}]))
    proc = service(store, path)
    out = proc.stdout.decode()
    assert proc.returncode == 1, out + proc.stderr.decode()
    assert out.startswith("FAIL bb-web: tcp_checks[0] (tcp, port 7000): the reply does not match 'PANG'")
    assert "sent     b'PING\\r\\n' (6 bytes)" in out
    assert "received b'PING\\r\\n' (6 bytes)" in out
    assert "(failed in checks)" in out and "start " in out
    assert "----- service stdout (9 bytes) -----\nstarting\n" in out


def test_failed_http_check(store, layout, tmp_path):
    path = spec_file(tmp_path, **web(layout, http_checks=[{"path": "/", "status": 200, "body": "goodbye"}]))
    proc = service(store, path)
    out = proc.stdout.decode()
    assert proc.returncode == 1
    assert "http_checks[0] (http, port 8080): the body does not match 'goodbye'" in out
    assert "sent     GET / HTTP/1.1 (Host: 127.0.0.1:8080, Connection: close)" in out
    assert "received HTTP/1.1 200 OK" in out and "b'hello web\\n" in out


def test_failed_client_shows_its_output(store, layout, tmp_path):
    path = spec_file(tmp_path, **web(layout, client={
        "layout": layout, "command": [BB, "sh", "-c", "echo client says; wget -qO- http://127.0.0.1:9/ ; exit 4"],
        "expect_exit": 0}))
    out = service(store, path).stdout.decode()
    assert "FAIL bb-web: client (client): exit code 4, expected 0" in out
    assert "stdout   b'client says\\n'" in out
    assert "----- client stderr" in out and "Connection refused" in out


def test_not_ready_in_time_shows_the_output(store, layout, tmp_path):
    path = spec_file(tmp_path, name="never", layout=layout, ready_port=8081, ready_timeout=1,
                     command=[BB, "sh", "-c", "echo waiting for nothing; sleep 60"], stop_signal="KILL")
    start = time.monotonic()
    proc = service(store, path)
    out = proc.stdout.decode()
    assert proc.returncode == 1 and time.monotonic() - start < 20
    assert "FAIL never: not ready within ready_timeout 1.0 s: port 8081 did not accept" in out
    assert "waiting for nothing" in out


@pytest.mark.parametrize("delay, when", [("0", ""), ("0.5", "before it was ready")])  # 0: either
def test_exit_before_ready(store, layout, tmp_path, delay, when):
    path = spec_file(tmp_path, name="quits", layout=layout, ready_port=8080,
                     command=[BB, "sh", "-c", "sleep %s; echo bad config >&2; exit 2" % delay])
    out = service(store, path).stdout.decode()
    assert "FAIL quits: the service exited with code 2 " + when in out
    assert "bad config" in out


def test_stop_timeout_kills_and_fails(store, layout, tmp_path):
    # sh as PID 1 without a trap: the kernel drops SIGTERM
    path = spec_file(tmp_path, name="stubborn", layout=layout, stop_timeout=1,
                     command=[BB, "sh", "-c", "echo up; while true; do sleep 1; done"], ready_log="up")
    out = service(store, path).stdout.decode()
    assert "FAIL stubborn: the service did not stop within stop_timeout 1.0 s after SIGTERM" in out


def test_unexpected_stop_exit(store, layout, tmp_path):
    path = spec_file(tmp_path, **web(layout, expect_stop_exit=0))
    out = service(store, path).stdout.decode()
    assert "after SIGTERM the service exited with code 3, expected 0 (expect_stop_exit)" in out
    assert "got TERM" in out


def test_restart_keeps_write_and_client_joins(store, layout, tmp_path, smith_runtime):
    get = {"command": [BB, "wget", "-qO-", "http://127.0.0.1:8080/runs"]}
    path = spec_file(
        tmp_path, name="restart", layout=layout, ready_port=8080, stop_signal="KILL", expect_stop_exit=137,
        command=[BB, "sh", "-c", "echo run >> /write/runs; exec busybox httpd -f -p 127.0.0.1:8080 -h /write"],
        client=dict(get, layout=layout, expect_stdout="^run$"), restart=True,
        after_restart=[{"type": "http", "path": "/runs", "body": "^run\nrun\n$"},
                       dict(get, type="client", expect_stdout="^run\nrun$"),
                       {"type": "tcp", "send": "GET /runs HTTP/1.0\r\n\r\n", "expect": "run\nrun"}])
    for rt in ("runc", smith_runtime):
        proc = service(store, path, rt)
        out = proc.stdout.decode()
        assert proc.returncode == 0, out + proc.stderr.decode()
        assert "restart " in out and "after_restart " in out and "ok after_restart[2]" in out


def test_sigterm_cleans_up(store, layout, tmp_path):
    """Pants cancelling a test: SIGTERM (or SIGINT) in the middle of a check."""
    path = spec_file(tmp_path, **web(layout, tcp_checks=[{"send": "", "expect": "never", "port": 8080, "timeout": 60}]))
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen(launch_cmd("service", "--spec", path, "--store", store),
                                env=smith_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while not os.listdir(os.path.join(store, "c")) if os.path.isdir(os.path.join(store, "c")) else True:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(1.5)  # started, ready, inside the check
            proc.send_signal(sig)
            proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 128 + sig
        assert leftovers(store) == []


def test_parallel_services_have_their_own_namespaces(store, layout, tmp_path):
    paths = []
    for i in range(3):
        d = tmp_path / str(i)
        d.mkdir()
        paths.append(spec_file(d, **web(layout, name="web%d" % i, http_checks=[{"path": "/index.html"}])))
    results = [None] * 3

    def go(i):
        results[i] = service(store, paths[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def test_timeout_of_the_whole_test(store, layout, tmp_path):
    path = spec_file(tmp_path, **web(layout, timeout=2,
                                     tcp_checks=[{"send": "", "expect": "x", "port": 8080, "timeout": 60}]))
    out = service(store, path).stdout.decode()
    assert "did not finish within its timeout of 2.0 s (in phase checks)" in out


def test_bad_spec_is_a_clear_error(tmp_path):
    path = spec_file(tmp_path, layout="x", tcp_checks=[{"expect": "("}])
    proc = subprocess.run(launch_cmd("service", "--spec", path), env=smith_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 1
    assert b"tcp_checks[0].expect: '(' is not a valid Python regular expression" in proc.stderr
    assert b"Traceback" not in proc.stderr


@pytest.mark.parametrize("spec, message", [
    ({"layout": "x", "bogus": 1}, "spec: unknown key 'bogus'"),
    ({}, "layout: the image to test"),
    ({"layout": "x", "tcp_checks": [{"expect": "a"}]}, "tcp_checks[0].port: has no `port` and there is no `ready_port`"),
    ({"layout": "x", "ready_port": 70000}, "ready_port: must be between 1 and 65535"),
    ({"layout": "x", "tcp_checks": {"expect": "a"}}, "tcp_checks: must be a list of dicts"),
    ({"layout": "x", "ready_port": 1, "tcp_checks": [{"send": "a"}]}, "tcp_checks[0]: needs `expect`"),
    ({"layout": "x", "ready_port": 1, "http_checks": [{"path": "no-slash"}]}, "http_checks[0].path: 'no-slash' must start with /"),
    ({"layout": "x", "ready_port": 1, "http_checks": [{"method": "BREW"}]}, "http_checks[0].method: 'BREW' is not one of"),
    ({"layout": "x", "ready_port": 1, "http_checks": [{"statsu": 200}]}, "http_checks[0]: unknown key 'statsu'"),
    ({"layout": "x", "after_restart": [{"type": "tcp", "expect": "a", "port": 1}]}, "after_restart: has checks but `restart` is False"),
    ({"layout": "x", "restart": True, "after_restart": [{"type": "client"}]}, "after_restart[0]: is a client check, but the test has no `client` image"),
    ({"layout": "x", "restart": True, "after_restart": [{"send": "a"}]}, "after_restart[0]: must be a dict with \"type\""),
    ({"layout": "x", "stop_signal": "TREM"}, "stop_signal: 'TREM' is not a signal"),
    ({"layout": "x", "ready_timeout": 0}, "ready_timeout: must be a positive number of seconds"),
    ({"layout": "x", "client": {"layout": "y", "expect_exit": "0"}}, "client.expect_exit: must be a whole number"),
])
def test_spec_validation(spec, message):
    with pytest.raises(SpecError) as e:
        service_spec.validate(spec)
    assert str(e.value).startswith(message), str(e.value)


def test_spec_defaults():
    s = service_spec.validate({"layout": "img", "ready_port": 80, "stop_signal": "sigint",
                               "tcp_checks": [{"send": "x", "expect": "y"}],
                               "client": {"layout": "cli", "args": ["a"]}})
    assert (s.stop_signal, s.expect_stop_exit, s.stop_timeout, s.ready_timeout) == ("INT", 0, 10.0, 30.0)
    assert [c.where for c in s.checks] == ["tcp_checks[0]", "client"]
    assert s.checks[0].port == 80 and s.checks[0].send == b"x"
    assert service_spec.signal_name(15, "f") == "15"


def test_the_report_is_printed_escaped(store, tmp_path):
    """The report's lines quote strangers' text (an HTTP reason or header, an error about the
    image): escaped, where an OSC reached the terminal as is before. The service's own output
    (its logs) is shown as it is: it is the user's program's."""
    import io
    from smith.launch import service
    from smith.launch.container import Settings
    spec = service_spec.validate({"name": "evil", "layout": str(tmp_path / "no\x1b]2;owned\x07") + ":latest",
                                  "command": ["/x"]})
    out = io.StringIO()
    assert service.run(spec, Settings(store=store), out=out) == 1
    assert out.getvalue().startswith("FAIL evil: error: %s/no\\x1b]2;owned\\x07:latest does not exist"
                                     % tmp_path), out.getvalue()
    assert "\x1b" not in out.getvalue()
