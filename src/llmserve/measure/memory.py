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
