"""Shrinks a freshly built wheel so it can come back from the GPU machine (a file may be 16 MiB there):
strips debug sections from its shared objects (nvcc/g++ builds keep them; the code is unchanged),
rewrites RECORD with the new hashes and writes the wheel xz-compressed. --drop leaves out members whose
name contains the given text: SageAttention's sm80/sm89 kernel modules are optional imports, unused on a
Hopper GPU, and two thirds of the wheel; without them it fits beside the rest of the benchmark's carry.
  python3 bench/gpu/slim_wheel.py WHEEL OUT.whl.xz [--drop _qattn_sm80 --drop _qattn_sm89]"""

import argparse
import base64
import hashlib
import lzma
import os
import subprocess
import tempfile
import zipfile


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def slim(wheel, out, drop=()):
    with zipfile.ZipFile(wheel) as src, tempfile.TemporaryDirectory() as tmp:
        entries = []
        record_name = None
        for info in src.infolist():
            if any(d in info.filename for d in drop):
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                record_name = info.filename
                continue
            if info.filename.endswith(".so"):
                path = os.path.join(tmp, "lib.so")
                with open(path, "wb") as f:
                    f.write(data)
                subprocess.run(["strip", "--strip-debug", path], check=True)
                with open(path, "rb") as f:
                    data = f.read()
            entries.append((info.filename, data))
        record = "\n".join([record_line(n, d) for n, d in entries] + [f"{record_name},,", ""])
        slim_path = os.path.join(tmp, os.path.basename(wheel))
        with zipfile.ZipFile(slim_path, "w", zipfile.ZIP_DEFLATED) as dst:
            for name, data in entries:
                dst.writestr(name, data)
            dst.writestr(record_name, record)
        with open(slim_path, "rb") as f, lzma.open(out, "wb", preset=9) as xz:
            xz.write(f.read())
    print(f"{out}: {os.path.getsize(out) / 2**20:.1f} MiB (wheel {os.path.getsize(wheel) / 2**20:.1f} MiB)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("wheel")
    p.add_argument("out")
    p.add_argument("--drop", action="append", default=[], help="leave out members whose name contains this")
    args = p.parse_args()
    slim(args.wheel, args.out, args.drop)
