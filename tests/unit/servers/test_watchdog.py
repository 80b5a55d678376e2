"""`offline_engine`'s watchdog (llmserve.servers.watchdog) on real processes standing in for vLLM's engine
children: they die when their owner is SIGKILLed, and survive a normal stop of the watchdog (the engine's own
shutdown stops them then). The real multi-process engine start costs a minute, so it is left to `make bench`
(cpu_levers starts that layout); what can leak is the same set of child processes."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil

OWNER = textwrap.dedent("""
    import json, subprocess, sys, time
    from llmserve.servers.offline import _child_pids, _start_watchdog

    existing = _child_pids()
    # an "engine core" that has a child of its own, and a "worker"
    core = subprocess.Popen(["bash", "-c", "sleep 300 & wait"])
    worker = subprocess.Popen(["sleep", "300"])
    time.sleep(0.3)
    watchdog = _start_watchdog(existing)
    print(json.dumps({"children": [core.pid, worker.pid], "watchdog": watchdog.pid}), flush=True)
    if sys.argv[1] == "stop":
        import signal
        watchdog.send_signal(signal.SIGUSR1)
        print(json.dumps({"watchdog_exit": watchdog.wait(timeout=10)}), flush=True)
    time.sleep(300)
""")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _start_owner(tmp_path, mode: str):
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE, text=True)
    report = json.loads(owner.stdout.readline())
    tree = []
    for pid in report["children"]:
        tree += [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    return owner, report, tree


def _kill(pids):
    for pid in pids:
        if _alive(pid):
            psutil.Process(pid).kill()


def test_children_and_grandchildren_die_with_a_sigkilled_owner(tmp_path):
    owner, report, tree = _start_owner(tmp_path, "hang")
    try:
        assert len(tree) == 3 and all(_alive(pid) for pid in tree)  # core, its child, worker
        os.kill(owner.pid, signal.SIGKILL)  # no atexit, no finally: only the watchdog can clean up
        owner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in [*tree, report["watchdog"]]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in tree if _alive(pid)], "processes outlived their SIGKILLed owner"
        assert not _alive(report["watchdog"])
    finally:
        _kill([owner.pid, *tree])


def test_a_normal_stop_leaves_the_children_to_the_engine(tmp_path):
    owner, report, tree = _start_owner(tmp_path, "stop")
    try:
        assert json.loads(owner.stdout.readline()) == {"watchdog_exit": 0}
        assert all(_alive(pid) for pid in tree), "SIGUSR1 means a normal shutdown: the watchdog kills nothing"
    finally:
        _kill([owner.pid, *tree])
