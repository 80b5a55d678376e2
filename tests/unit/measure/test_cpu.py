"""CPU placement and accounting: CPU lists, pinned commands and threads, a pinned and niced thread's children, CPU
seconds per process, and a hog that is gone after its block."""
import os
import subprocess
import sys
import threading
import time

import psutil
import pytest

from llmserve.measure.cpu import (
    CPUHog,
    cpu_list,
    cpu_seconds,
    pin_threads,
    pinned_command,
    run_pinned,
    split_cpus,
    thread_affinities,
    usable_cpus,
)


def test_cpu_lists_and_the_split_between_server_and_client():
    assert cpu_list({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8" and cpu_list([3]) == "3"
    assert split_cpus([0, 1]) == ({0}, {1}) and split_cpus([0, 1, 2, 3]) == ({0, 1, 2}, {3})
    with pytest.raises(ValueError, match="at least two"):
        split_cpus([0])
    assert pinned_command(["python", "-m", "x", 5], {0, 1}) == ["taskset", "-c", "0-1", "python", "-m", "x", "5"]


def test_a_pinned_command_and_pinned_threads():
    cpu = usable_cpus()[-1]
    child = subprocess.Popen(pinned_command([sys.executable, "-c", "import time; time.sleep(5)"], {cpu}))
    try:
        process, deadline = psutil.Process(child.pid), time.monotonic() + 10
        # between fork and exec the child still shows pytest's command line, then taskset's; taskset sets the
        # affinity and execs the command: wait until the command itself runs
        while "time.sleep" not in " ".join(process.cmdline()) or "taskset" in process.name():
            assert time.monotonic() < deadline, process.cmdline()
        assert all(cpus == {cpu} for cpus in thread_affinities(child.pid).values())
        first = usable_cpus()[0]
        assert pin_threads(child.pid, {first}) >= 1
        assert all(cpus == {first} for cpus in thread_affinities(child.pid).values())
    finally:
        child.kill()
        child.wait()


def test_run_pinned_binds_the_work_and_its_threads_and_leaves_the_caller_alone():
    cpu = usable_cpus()[-1]
    before = (os.sched_getaffinity(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    def work():
        seen = {}

        def child():
            seen["child"] = (os.sched_getaffinity(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

        thread = threading.Thread(target=child)
        thread.start()
        thread.join()
        return os.sched_getaffinity(0), seen["child"]

    mine, child = run_pinned(work, cpus={cpu}, niceness=5)
    assert mine == {cpu} and child[0] == {cpu} and child[1] == before[1] + 5
    assert (os.sched_getaffinity(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())) == before


def test_cpu_seconds_and_a_hog_that_is_gone_afterwards():
    cpu = usable_cpus()[-1]
    with CPUHog(cpus={cpu}, processes=2, niceness=19) as niced:
        assert [psutil.Process(p.pid).nice() for p in niced.processes] == [19, 19]
    with CPUHog(cpus={cpu}, processes=1) as hog:
        pid = hog.processes[0].pid
        assert os.sched_getaffinity(pid) == {cpu}
        with cpu_seconds({"hog": pid, "me": os.getpid()}) as used:
            began = time.process_time()
            while time.process_time() - began < 0.15:  # this process's own work, while the hog spins
                pass
        assert used.seconds["hog"] > 0 and used.seconds["me"] >= 0.1 and used.wall >= 0.15
        assert used.machine >= used.seconds["me"]
    for process in niced.processes + hog.processes:
        assert process.poll() is not None
