"""SageAttention at the 14B model's attention shape in both tensor layouts: time per call and whether
the two give the same bits (bench/results/sage-layout.json: the same time and bits on the H200, so the
wrapper's layout stays).

    python3 bench/gpu/sage_layout.py [--tokens 32760] [--out bench/results/sage-layout.json]

"nhd" is the wrapper's call ([batch, tokens, heads, dim]); "hnd" hands the kernel heads-first copies and
turns the output back (copies included); "hnd kernel only" starts from heads-first
tensors. Median of --reps calls after 3 warm-up calls, CUDA events.
"""

import argparse
import json
import statistics

import torch
from sageattention import sageattn


def timed(fn, reps):
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return round(statistics.median(times), 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32760)
    parser.add_argument("--heads", type=int, default=40)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, args.tokens, args.heads, args.dim, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    qh, kh, vh = (t.transpose(1, 2).contiguous() for t in (q, k, v))

    def nhd():
        return sageattn(q, k, v, tensor_layout="NHD").contiguous()

    def hnd():
        out = sageattn(q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous(), tensor_layout="HND")
        return out.transpose(1, 2).contiguous()

    def hnd_kernel():
        return sageattn(qh, kh, vh, tensor_layout="HND")

    a, b = nhd(), hnd()
    result = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "shape_nhd": list(q.shape),
        "ms_nhd": timed(nhd, args.reps),
        "ms_hnd_with_copies": timed(hnd, args.reps),
        "ms_hnd_kernel_only": timed(hnd_kernel, args.reps),
        "bitwise_equal": bool(torch.equal(a, b)),
        "max_abs_diff": float((a.float() - b.float()).abs().max()),
        "repeat_equal_nhd": bool(torch.equal(a, nhd())),
    }
    text = json.dumps(result)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
