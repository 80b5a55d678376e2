"""Memory of a process as the OS sees it (RSS), measured honestly.

`rss_bytes` first returns freed heap memory to the OS, so a drop after `del model` shows.
`process_rss_mib` reads another process (a Triton stub, a server) by pid.
"""
from __future__ import annotations

import ctypes
import gc
from pathlib import Path


def rss_bytes() -> int:
    """Resident memory of this process now, after returning freed heap memory to the OS."""
    import psutil

    gc.collect()
    try:  # glibc keeps freed memory for reuse; without this RSS would not drop after `del model`
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc (macOS, musl): RSS may include freed memory
        pass
    return psutil.Process().memory_info().rss


def rss_breakdown_mib() -> dict[str, float]:
    """RSS split into anonymous memory (tensors we allocated) and file pages (memory-mapped weights).

    Linux only (/proc/self/status); empty dict elsewhere.
    """
    rss_bytes()
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    wanted = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file"}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in wanted:
            out[wanted[key]] = int(value.split()[0]) / 1024
    return out


def process_rss_mib(pid: int, include_children: bool = False) -> float:
    """Resident memory of process `pid` in MiB (plus its children's, when asked)."""
    import psutil

    process = psutil.Process(pid)
    members = [process, *(process.children(recursive=True) if include_children else [])]
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def shared_memory_files(pid: int, *, include_children: bool = True, prefix: str = "/dev/shm/") -> dict[str, int]:
    """Files under /dev/shm that a process (and its children) has mapped, with their sizes in bytes.

    For Triton's Python backend these are the `triton_python_backend_shm_region_*` pools through which
    every tensor passes between the server and a model's stub process; they grow with the largest request.
    Read from /proc/<pid>/maps, so only this server's pools count, not another server's on the same machine.
    """
    import os

    import psutil

    pids = [pid]
    if include_children:
        try:
            pids += [child.pid for child in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            pass
    files: dict[str, int] = {}
    for one in pids:
        try:
            maps = Path(f"/proc/{one}/maps").read_text()
        except OSError:
            continue
        for line in maps.splitlines():
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith(prefix):
                name = parts[5].removesuffix(" (deleted)")
                try:
                    files[name] = os.stat(name).st_size
                except OSError:
                    files.setdefault(name, 0)  # unlinked while mapped
    return files
