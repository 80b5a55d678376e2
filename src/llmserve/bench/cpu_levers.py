"""Entry `cpu_levers`: vLLM's CPU settings side by side, one fresh process per setting.

Each setting starts its own engine in a new Python process (`python -m llmserve.bench.cpu_levers
--child ...`), so that settings which only apply at process start (LD_PRELOAD of tcmalloc, the
OpenMP environment) take effect, and no setting inherits modules, caches or memory from another.
Per setting it reports the engine start time (building `vllm.LLM`), the process start to a ready
engine (imports included), and the decode tokens/s at batch 1 and batch 8 with the prefill taken
out (`common.decode_rate`: 1 token vs n tokens of the same prompts), each against the course's
default: `llmserve.servers.offline_engine()` as it is (in-process, float32, 1 GiB KV cache).

The levers (vLLM 0.32, CPU backend):
- engine layout: in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, executor "uni") vs vLLM's own
  multi-process layout (an EngineCore process and a worker process);
- dtype: float32 vs bfloat16, only where the CPU has AVX512-BF16 or AMX-BF16 (/proc/cpuinfo);
  the dtype the engine chose is read back from it;
- tcmalloc: LD_PRELOAD of libtcmalloc_minimal (Debian: libtcmalloc-minimal4), as vLLM's CPU
  installation guide recommends; only if the library is installed (`ldconfig -p`);
- OpenMP thread binding `VLLM_CPU_OMP_THREADS_BIND`: "auto" (the default: per NUMA node, one
  logical CPU per physical core, minus one core reserved for the engine-core process), "nobind",
  or explicit CPU lists such as "0-1" ("|" between ranks). vLLM applies it only when it starts
  worker processes (vllm/utils/ompmultiprocessing.py, used by the multiprocessing executor), so
  it is measured in the multi-process layout; in-process it has no effect, and the in-process
  setting `omp_bind` binds the threads through libgomp itself (OMP_PROC_BIND, OMP_PLACES);
- `VLLM_CPU_KVCACHE_SPACE` (GiB, an integer in vLLM 0.32): the KV-cache size the engine allocates.

The ci profile measures the default, the multi-process layout, bf16 and tcmalloc (about six
minutes on two cores); the cpu profile adds the binding variants, a larger KV cache, bf16 with
tcmalloc, and the default once more at the end, which shows how much the machine drifted.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmserve.bench.common import (
    Entry,
    batch_decode_rate,
    cpu_flags,
    decode_rate_spread,
    ratio,
)

NAME = "cpu_levers"
DEFAULT = "default"
# The ci profile measures the layout, dtype and allocator levers (about 6 minutes on 2 cores);
# the cpu profile adds these.
CPU_PROFILE_ONLY = ("multi_process_bind_all", "multi_process_nobind", "omp_bind", "kv_4gib", "bf16_tcmalloc",
                    "default_again")
# In-process vLLM does not bind OpenMP threads; this is the same binding done by libgomp itself.
IN_PROCESS_BIND = {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}
CHILD_TIMEOUT_S = 420
BATCH = 8


@dataclass(frozen=True)
class Setting:
    """One engine configuration; `offline_engine` arguments plus the process environment."""
    key: str
    label: str
    in_process: bool = True
    dtype: str = "float32"
    kv_cache_gib: int = 1
    env: dict[str, str] = field(default_factory=dict)  # offline_engine(env=...): set before vLLM starts
    process_env: dict[str, str] = field(default_factory=dict)  # set at process start (read when torch loads)
    tcmalloc: bool = False


def find_tcmalloc() -> str | None:
    """Path of libtcmalloc_minimal (or libtcmalloc) from the dynamic linker's cache, else None."""
    try:
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    found = {}
    for line in listing.splitlines():
        # e.g. "\tlibtcmalloc_minimal.so.4 (libc6,x86-64) => /lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
        match = re.match(r"\s*(libtcmalloc(?:_minimal)?\.so\.\d+) \(([^)]*)\) => (\S+)", line)
        if match and "64" in match.group(2) and Path(match.group(3)).exists():
            found.setdefault(match.group(1), match.group(3))
    for name in ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"):
        if name in found:
            return found[name]
    return next(iter(found.values()), None)


def bf16_support(flags: set[str] | None = None) -> tuple[bool, str]:
    """(supported, reason) from the CPU flags: vLLM's CPU backend runs bf16 fast with AVX512-BF16/AMX."""
    flags = cpu_flags() if flags is None else flags
    have = sorted(flags & {"avx512_bf16", "amx_bf16"})
    if have:
        return True, f"CPU flags {', '.join(have)}"
    return False, "the CPU has neither avx512_bf16 nor amx_bf16 (/proc/cpuinfo): bf16 would be emulated"


def plan(profile: str, flags: set[str] | None = None, tcmalloc: str | None = None,
         cores: int | None = None) -> tuple[list[Setting], dict[str, str]]:
    """The settings to measure on this machine and profile, and the ones skipped with the reason."""
    cores = cores or os.cpu_count() or 1
    all_cores = f"0-{cores - 1}" if cores > 1 else "0"
    bf16, bf16_reason = bf16_support(flags)
    settings = [
        Setting(DEFAULT, "course default: in-process, fp32, KV 1 GiB"),
        Setting("multi_process", "multi-process (vLLM's layout), bind auto", in_process=False),
        Setting("multi_process_bind_all", f"multi-process, OMP bind {all_cores}", in_process=False,
                env={"VLLM_CPU_OMP_THREADS_BIND": all_cores}),
        Setting("multi_process_nobind", "multi-process, OMP nobind", in_process=False,
                env={"VLLM_CPU_OMP_THREADS_BIND": "nobind"}),
        Setting("omp_bind", "in-process, OpenMP threads bound to cores", process_env=IN_PROCESS_BIND),
        Setting("bf16", "in-process, bf16", dtype="bfloat16"),
        Setting("tcmalloc", "in-process, tcmalloc preload", tcmalloc=True),
        Setting("kv_4gib", "in-process, KV 4 GiB", kv_cache_gib=4),
        Setting("bf16_tcmalloc", "in-process, bf16 + tcmalloc", dtype="bfloat16", tcmalloc=True),
        Setting("default_again", "course default again (drift check)"),
    ]
    if profile == "gpu":
        return [], {"all": "the gpu profile runs vLLM on CUDA: these are CPU-backend settings"}
    skipped: dict[str, str] = {}
    if profile == "ci":
        skipped.update({key: "ci profile: measured in the cpu profile (each engine costs 60-150 s on 2 cores)"
                        for key in CPU_PROFILE_ONLY})
    if not bf16:
        skipped.update({s.key: bf16_reason for s in settings if s.dtype == "bfloat16"})
    if tcmalloc is None:
        skipped.update({s.key: "libtcmalloc_minimal is not installed (ldconfig -p); Debian: libtcmalloc-minimal4"
                        for s in settings if s.tcmalloc})
    if cores < 2:
        skipped.update({k: "one core: nothing to bind" for k in ("multi_process_bind_all", "omp_bind")})
    return [s for s in settings if s.key not in skipped], skipped


# --------------------------------------------------------------------------- parent side

def child_env(setting: Setting, tcmalloc_path: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: this process's, without any LD_PRELOAD (vLLM adds its libgomp to
    the parent's LD_PRELOAD when it starts an engine), plus tcmalloc where the setting asks."""
    env = dict(os.environ if base is None else base)
    env.pop("LD_PRELOAD", None)
    env.update(setting.process_env)
    if setting.tcmalloc:
        if not tcmalloc_path:
            raise ValueError("this setting needs libtcmalloc")
        env["LD_PRELOAD"] = tcmalloc_path
    return env


def run_setting(setting: Setting, sizes: dict, tcmalloc_path: str | None) -> dict:
    """Start one child process for `setting`, wait for its JSON (killing its process group on timeout)."""
    with tempfile.TemporaryDirectory(prefix="cpu-levers-") as tmp:
        out = Path(tmp) / "result.json"
        launched = time.time()
        cmd = [sys.executable, "-m", "llmserve.bench.cpu_levers", "--child", json.dumps(asdict(setting)),
               "--sizes", json.dumps({k: sizes[k] for k in ("lever_tokens", "lever_repeats")}),
               "--launched", repr(launched), "--out", str(out)]
        log = Path(tmp) / "child.log"
        with log.open("w") as handle:
            proc = subprocess.Popen(cmd, env=child_env(setting, tcmalloc_path), stdout=handle,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                proc.wait(timeout=CHILD_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return {"error": f"no result within {CHILD_TIMEOUT_S} s", "log_tail": log.read_text()[-2000:]}
            finally:
                # The child's engine processes are in its session: none may outlive it.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode != 0 or not out.exists():
            return {"error": f"child exited with status {proc.returncode}", "log_tail": log.read_text()[-2000:]}
        result = json.loads(out.read_text())
        result["process_wall_s"] = time.time() - launched
        result["vllm_binding_log"] = binding_log(log.read_text())
        return result


def binding_log(text: str) -> list[str]:
    """vLLM's own report of its OpenMP thread binding (multi-process layout) from a child's log."""
    keep = ("OpenMP thread binding", "VLLM_CPU_OMP_THREADS_BIND=", "local_world_size=", "core ids=",
            "reserved_cpus=", "LD_PRELOAD")
    return [line.strip()[-200:] for line in text.splitlines() if any(k in line for k in keep)][:20]


@contextlib.contextmanager
def _terminate_raises():
    """SIGTERM raises SystemExit while settings run, so `run_setting`'s cleanup kills the child's
    process group (it runs in its own session and would otherwise outlive this process)."""
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def measure(sizes: dict, profile: str, progress=print, checkpoint: Path | None = None) -> dict:
    """Every planned setting, one after the other; `checkpoint` gets the results so far after each."""
    tcmalloc_path = find_tcmalloc()
    flags = cpu_flags()
    settings, skipped = plan(profile, flags, tcmalloc_path)
    raw = {"settings": {}, "skipped": skipped, "tcmalloc_path": tcmalloc_path,
           "cpu_bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16"}),
           "parent_ld_preload": os.environ.get("LD_PRELOAD"), "batch": BATCH,
           "new_tokens": sizes["lever_tokens"], "repeats": sizes["lever_repeats"], "measured_s": 0.0}
    began = time.perf_counter()
    with _terminate_raises():
        for setting in settings:
            progress(f"  - cpu_levers: {setting.label}")
            raw["settings"][setting.key] = {"setting": asdict(setting), **run_setting(setting, sizes, tcmalloc_path)}
            raw["measured_s"] = time.perf_counter() - began
            if checkpoint is not None:
                checkpoint.write_text(json.dumps(raw), encoding="utf-8")
    return raw


def rows(raw: dict) -> list[dict]:
    """One row per setting: start, batch-1/batch-8 decode tokens/s, ratios to the default."""
    measured = {k: r for k, r in raw["settings"].items() if not r.get("error")}
    base = measured.get(DEFAULT)
    base_b1 = batch_decode_rate(base["b1"], min) if base else None
    base_b8 = batch_decode_rate(base["b8"], min) if base else None
    table = []
    for key, r in raw["settings"].items():
        row = {"key": key, "label": r["setting"]["label"], "error": r.get("error")}
        if not row["error"]:
            b1, b8 = batch_decode_rate(r["b1"], min), batch_decode_rate(r["b8"], min)
            row.update({"dtype": r["engine_dtype"], "start_s": r["startup_s"], "ready_s": r["ready_after_launch_s"],
                        "b1_tok_s": b1, "b8_tok_s": b8,
                        "b1_median_tok_s": batch_decode_rate(r["b1"]), "b8_median_tok_s": batch_decode_rate(r["b8"]),
                        "b1_spread_pct": decode_rate_spread(r["b1"]).get("half_range_pct"),
                        "b8_spread_pct": decode_rate_spread(r["b8"]).get("half_range_pct"),
                        "others_cpu_pct": 100 * max(r.get("others_cpu_share_start", 0.0),
                                                    r.get("others_cpu_share_decode", 0.0)),
                        "start_ratio": ratio(r["startup_s"], base["startup_s"]) if base else None,
                        "b1_ratio": ratio(b1, base_b1), "b8_ratio": ratio(b8, base_b8),
                        "same_greedy_b1": (r["b1"]["token_ids"] == base["b1"]["token_ids"]) if base else None,
                        "same_greedy_b8": (r["b8"]["token_ids"] == base["b8"]["token_ids"]) if base else None})
        table.append(row)
    return table


def best(raw: dict, metric: str = "b1_tok_s") -> dict | None:
    """The measured row with the highest `metric` (the roofline entry takes batch 1)."""
    candidates = [r for r in rows(raw) if not r["error"]]
    return max(candidates, key=lambda r: r[metric]) if candidates else None


def build(raw: dict) -> Entry:
    table = rows(raw)
    entry = Entry(NAME, "vLLM's CPU levers, one fresh process and engine per setting, one after the other: engine "
                  f"start, decode tokens/s at batch 1 and batch {raw['batch']} ({raw['new_tokens']} new tokens, "
                  f"prefill removed, best of {raw['repeats']} repeats: other processes only slow a run down; the "
                  "spread and the CPU share other processes took are reported), each against the course default "
                  "(offline_engine(): in-process, fp32, 1 GiB KV).")
    entry.raw = {**raw, "rows": table}
    ok = [r for r in table if not r["error"]]
    for r in ok:
        for field_name in ("start_s", "b1_tok_s", "b8_tok_s", "b1_ratio", "b8_ratio"):
            entry.summary[f"{r['key']}_{field_name}"] = r[field_name]
    if ok:
        entry.summary["best_b1"] = max(ok, key=lambda r: r["b1_tok_s"])["key"]
        entry.summary["best_b8"] = max(ok, key=lambda r: r["b8_tok_s"])["key"]
        entry.summary["fastest_start"] = min(ok, key=lambda r: r["start_s"])["key"]
    failed = [f"{r['key']}: {r['error']}" for r in table if r["error"]]
    if DEFAULT not in {r["key"] for r in ok}:
        entry.error = "the default setting did not run" + (f" ({'; '.join(failed)})" if failed else "")
    elif failed:
        entry.error = "; ".join(failed)
    return entry


def markdown_table(entry: Entry) -> str:
    """The table the course's defaults are chosen from (also written to <out>/cpu_levers.md)."""
    lines = ["| setting | dtype | start (s) | ready after launch (s) | batch 1 (tok/s) | batch 8 (tok/s) "
             "| start / default | b1 / default | b8 / default | same greedy tokens | others' CPU |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in entry.raw["rows"]:
        if r["error"]:
            lines.append(f"| {r['label']} | | | | | | | | | ERROR: {r['error']} | |")
            continue
        same = "yes" if r["same_greedy_b1"] and r["same_greedy_b8"] else (
            "b1 only" if r["same_greedy_b1"] else "no")
        lines.append(f"| {r['label']} | {r['dtype']} | {r['start_s']:.1f} | {r['ready_s']:.1f} "
                     f"| {r['b1_tok_s']:.1f} (±{r['b1_spread_pct'] or 0:.0f}%) "
                     f"| {r['b8_tok_s']:.0f} (±{r['b8_spread_pct'] or 0:.0f}%) "
                     f"| {r['start_ratio']:.2f} | {r['b1_ratio']:.2f} | {r['b8_ratio']:.2f} | {same} "
                     f"| {r['others_cpu_pct']:.0f}% |")
    for key, reason in entry.raw["skipped"].items():
        lines.append(f"| {key}: skipped | | | | | | | | | {reason} | |")
    lines.append("")
    lines.append(f"Decode: {entry.raw['new_tokens']} new tokens, prefill removed (1 token vs n tokens), best of "
                 f"{entry.raw['repeats']} repeats; (±x%) is the half-range of the per-repeat rates. Start: building "
                 "vllm.LLM; ready after launch adds the new process's imports. Others' CPU: the share of all cores "
                 "that processes outside the measured one used meanwhile (noise; 0% on a quiet machine).")
    return "\n".join(lines)


def summary_text(entry: Entry) -> str:
    return markdown_table(entry)


def plot(entry: Entry, out_dir: Path) -> str | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    table = [r for r in entry.raw["rows"] if not r["error"]]
    if not table:
        return None
    labels = [r["label"].replace("course default: ", "default: ") for r in table]
    fig, axes = plt.subplots(1, 3, figsize=(12, 0.45 * len(table) + 1.8), sharey=True)
    panels = [("start_s", "start_ratio", "engine start (s), lower is better"),
              ("b1_tok_s", "b1_ratio", "batch-1 decode tokens/s"),
              ("b8_tok_s", "b8_ratio", f"batch-{entry.raw['batch']} decode tokens/s")]
    ys = range(len(table))
    for ax, (value_key, ratio_key, title) in zip(axes, panels, strict=True):
        colors = ["#fc8d62" if r["key"] == DEFAULT else "#8da0cb" for r in table]
        bars = ax.barh(list(ys), [r[value_key] for r in table], color=colors)
        ax.bar_label(bars, labels=[f"{r[value_key]:.3g} ({r[ratio_key]:.2f}x)" for r in table], fontsize=7,
                     padding=2)
        ax.set_title(title, fontsize=9)
        ax.set_xlim(0, 1.35 * max(r[value_key] for r in table))
        ax.tick_params(axis="x", labelsize=7)
    axes[0].set_yticks(list(ys), labels, fontsize=8)
    axes[0].invert_yaxis()
    skipped = entry.raw["skipped"]
    failed = [r["key"] for r in entry.raw["rows"] if r["error"]]
    note = "; ".join(filter(None, [
        ("skipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items())) if skipped else "",
        ("failed (see results.json): " + ", ".join(failed)) if failed else ""]))
    fig.suptitle("vLLM CPU levers, one fresh engine per setting (ratio to the course default in brackets)"
                 + ("\n" + note if note else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / f"{NAME}.png", dpi=110)
    plt.close(fig)
    return f"{NAME}.png"


# --------------------------------------------------------------------------- child side

def _thread_affinities(pid: int) -> dict[str, int]:
    """How many threads of `pid` may run on which CPUs (Cpus_allowed_list -> count): OpenMP
    binding pins threads one by one, which the process-wide affinity does not show."""
    counts: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for line in (task / "status").read_text().splitlines():
                    if line.startswith("Cpus_allowed_list:"):
                        cpus = line.split(":", 1)[1].strip()
                        counts[cpus] = counts.get(cpus, 0) + 1
    return counts


def _maps_have(pid: int, name: str) -> bool | None:
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return None


def thread_layout() -> dict:
    """Threads, CPU affinity, OpenMP environment and tcmalloc of this process and its children."""
    import psutil
    import torch
    me = psutil.Process()
    info = {"pid": me.pid, "torch_threads": torch.get_num_threads(), "affinity": sorted(os.sched_getaffinity(0)),
            "threads": me.num_threads(), "thread_affinities": _thread_affinities(me.pid),
            "tcmalloc_loaded": _maps_have(me.pid, "libtcmalloc"),
            "OMP": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_", "KMP_"))},
            "LD_PRELOAD": os.environ.get("LD_PRELOAD"), "children": []}
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            env = child.environ()
            info["children"].append({
                "name": child.name(), "threads": child.num_threads(), "affinity": child.cpu_affinity(),
                "thread_affinities": _thread_affinities(child.pid),
                # the environment the child was started with (a forked worker's later changes do not show)
                "exec_env_omp": {k: v for k, v in env.items() if k.startswith(("OMP_", "GOMP_", "KMP_"))},
                "tcmalloc_loaded": _maps_have(child.pid, "libtcmalloc")})
    return info


class ForeignLoad:
    """CPU time that processes outside this process tree used during a window, as a share of
    all cores: the noise this machine added to a measurement (0 on a quiet machine)."""

    def __init__(self):
        self._began = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        import psutil
        cpu = psutil.cpu_times()
        busy = sum(cpu) - cpu.idle - getattr(cpu, "iowait", 0.0)
        me = psutil.Process()
        own = sum(me.cpu_times()[:2])
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                own += sum(child.cpu_times()[:2])
        return time.perf_counter(), busy, own

    def share(self) -> float:
        (t0, busy0, own0), (t1, busy1, own1) = self._began, self._sample()
        cores = os.cpu_count() or 1
        # CPU times tick in 10 ms: over a very short window the share is meaningless, clamp it.
        return min(1.0, max(0.0, ((busy1 - busy0) - (own1 - own0)) / ((t1 - t0) * cores))) if t1 > t0 else 0.0


def child_main(setting: Setting, sizes: dict, launched: float, out: Path) -> None:
    from vllm import SamplingParams

    from llmserve.bench.common import decode_timings, question_prompts
    from llmserve.servers import kv_cache_report, offline_engine
    result: dict = {}
    start_load = ForeignLoad()
    with offline_engine(in_process=setting.in_process, dtype=setting.dtype, kv_cache_gib=setting.kv_cache_gib,
                        env=setting.env or None) as llm:
        result["ready_after_launch_s"] = time.time() - launched
        result["others_cpu_share_start"] = start_load.share()
        result["startup_s"] = llm.startup_seconds
        result["in_process"] = llm.in_process
        result["engine_dtype"] = str(llm.llm_engine.vllm_config.model_config.dtype).removeprefix("torch.")
        kv = kv_cache_report(llm)
        result["kv_cache"] = {"capacity_tokens": kv.capacity_tokens, "cache_bytes": kv.cache_bytes,
                              "num_blocks": kv.num_blocks, "block_size": kv.block_size}
        result["threads"] = thread_layout()
        tokenizer = llm.get_tokenizer()
        prompts = [{"prompt_token_ids": list(tokenizer.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=True, add_generation_prompt=True, return_dict=False))}
            for q in question_prompts(BATCH)]
        llm.generate(prompts[:1], SamplingParams(temperature=0, max_tokens=2), use_tqdm=False)  # warm-up
        n, repeats = sizes["lever_tokens"], sizes["lever_repeats"]
        decode_load = ForeignLoad()
        result["b1"] = decode_timings(llm, prompts[:1], n, repeats)
        result["b8"] = decode_timings(llm, prompts, n, repeats)
        result["others_cpu_share_decode"] = decode_load.share()
    out.write_text(json.dumps(result))


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one cpu_levers setting (started by the bench)")
    parser.add_argument("--child", required=True, help="the Setting as JSON")
    parser.add_argument("--sizes", required=True)
    parser.add_argument("--launched", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    child_main(Setting(**json.loads(args.child)), json.loads(args.sizes), args.launched, args.out)
    return 0


if __name__ == "__main__":  # vLLM needs the guard: its engine processes re-import the main module
    sys.exit(_main())
