"""Carry an installed wheel's files to a machine that cannot download it, in parts small enough for one transfer
each, and install them there only if every byte is what the wheel's publisher hashed.

    python scripts/wheel_parts.py split WHEEL OUT --part-mb 38 [--leave NAME ...]   # here: OUT/part-NN + manifest
    python scripts/wheel_parts.py join PARTS_DIR TARGET                             # there: check, unpack, verify

``split`` unpacks the wheel, leaves out the files named with ``--leave`` (libraries the job never loads), packs
the rest as one xz tarball and cuts it into parts; ``manifest.json`` holds each part's and the whole tarball's
SHA-256. ``join`` checks each part and the re-joined tarball against the manifest, unpacks it into TARGET (a
``pip install --target`` folder, first on ``PYTHONPATH``) and checks every unpacked file against the SHA-256 the
wheel's own ``RECORD`` lists, so a file that travelled wrong, or one the wheel never had, stops the install.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import lzma
import sys
import tarfile
import zipfile
from pathlib import Path

MANIFEST = "manifest.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split(wheel: Path, out: Path, part_bytes: int, leave: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(wheel) as archive, tarfile.open(fileobj=buffer, mode="w") as tar:
        for info in archive.infolist():
            if info.is_dir() or info.filename in leave:
                continue
            data = archive.read(info)
            member = tarfile.TarInfo(info.filename)
            member.size, member.mode = len(data), (info.external_attr >> 16) or 0o644
            tar.addfile(member, io.BytesIO(data))
    packed = lzma.compress(buffer.getvalue(), preset=9 | lzma.PRESET_EXTREME)
    parts = [packed[i : i + part_bytes] for i in range(0, len(packed), part_bytes)]
    for index, part in enumerate(parts):
        (out / f"part-{index:02d}").write_bytes(part)
    manifest = {
        "wheel": wheel.name,
        "wheel_sha256": sha256(wheel.read_bytes()),
        "left_out": leave,
        "tarball_sha256": sha256(packed),
        "parts": {f"part-{i:02d}": sha256(part) for i, part in enumerate(parts)},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{len(parts)} parts of at most {part_bytes} bytes ({len(packed)} in all) in {out}")


def _record_hash(entry: str) -> str:
    """RECORD's ``sha256=<urlsafe base64, unpadded>`` as hex."""
    algorithm, _, value = entry.partition("=")
    if algorithm != "sha256":
        raise SystemExit(f"RECORD uses {algorithm!r}, not sha256")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()


def join(parts_dir: Path, target: Path) -> None:
    manifest = json.loads((parts_dir / MANIFEST).read_text())
    chunks = []
    for name, expected in manifest["parts"].items():
        data = (parts_dir / name).read_bytes()
        if sha256(data) != expected:
            raise SystemExit(f"{name}: SHA-256 {sha256(data)} is not the manifest's {expected}")
        chunks.append(data)
    packed = b"".join(chunks)
    if sha256(packed) != manifest["tarball_sha256"]:
        raise SystemExit("the re-joined tarball's SHA-256 is not the manifest's")
    with tarfile.open(fileobj=io.BytesIO(lzma.decompress(packed))) as tar:
        names = tar.getnames()
        tar.extractall(target, filter="data")
    record = next(n for n in names if n.endswith(".dist-info/RECORD"))
    with (target / record).open(newline="") as handle:
        listed = {row[0]: row[1] for row in csv.reader(handle) if row and row[1]}
    wrong = [n for n in names if n in listed and sha256((target / n).read_bytes()) != _record_hash(listed[n])]
    unlisted = [n for n in names if n not in listed and n != record]
    missing = sorted(set(listed) - set(names) - set(manifest["left_out"]))
    if wrong or unlisted or missing:
        raise SystemExit(f"not the wheel's files: wrong {wrong}, not in RECORD {unlisted}, missing {missing}")
    print(f"{manifest['wheel']}: {len(names)} files match its RECORD; left out: {', '.join(manifest['left_out'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cut = commands.add_parser("split")
    cut.add_argument("wheel", type=Path)
    cut.add_argument("out", type=Path)
    cut.add_argument("--part-mb", type=float, default=38.0, help="largest part, MB (10^6 bytes)")
    cut.add_argument("--leave", nargs="*", default=[], help="paths inside the wheel to leave out")
    glue = commands.add_parser("join")
    glue.add_argument("parts_dir", type=Path)
    glue.add_argument("target", type=Path)
    args = parser.parse_args()
    if args.command == "split":
        split(args.wheel, args.out, int(args.part_mb * 1e6), args.leave)
    else:
        join(args.parts_dir, args.target)
    sys.exit(0)


if __name__ == "__main__":
    main()
