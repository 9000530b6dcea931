#!/usr/bin/env python3
"""A stand-in for ffprobe on a benchmark machine that has none (only a video's first stream, through
OpenCV's own FFmpeg): answers the JSON fields the worker and bench/gpu/run.mjs read. Not for the image,
which installs the real ffprobe. Usage as ffprobe: [-v error] [-select_streams v:0] [-count_packets]
[-show_entries ...] [-show_streams] [-show_format] [-of json|-print_format json] FILE"""

import json
import os
import sys
from fractions import Fraction


def main(argv):
    path = argv[-1]
    import cv2

    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        print(f"{path}: Invalid data found when processing input", file=sys.stderr)
        return 1
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = Fraction(cap.get(cv2.CAP_PROP_FPS)).limit_denominator(1001)
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace").lower()
    codec = {"avc1": "h264", "h264": "h264", "hev1": "hevc", "hvc1": "hevc", "mp4v": "mpeg4", "vp09": "vp9", "av01": "av1"}.get(fourcc, fourcc)
    rate = f"{fps.numerator}/{fps.denominator}"
    stream = {
        "index": 0, "codec_type": "video", "codec_name": codec,
        "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        "nb_frames": str(frames), "nb_read_packets": str(frames), "r_frame_rate": rate, "avg_frame_rate": rate,
        "duration": str(round(frames / float(fps), 6)) if fps else None,
    }
    if "-count_frames" in argv:
        # The input probe asks for one decoded frame (-read_intervals %+#1): decode, do not trust the header.
        limit = frames
        if "-read_intervals" in argv:
            interval = argv[argv.index("-read_intervals") + 1]
            if interval.startswith("%+#"):
                limit = int(interval[3:])
        decoded = 0
        while decoded < limit and cap.read()[0]:
            decoded += 1
        stream["nb_read_frames"] = str(decoded)
    out = {"streams": [stream]}
    if "-show_format" in argv:
        out["format"] = {"filename": path, "size": str(os.path.getsize(path)), "duration": stream["duration"]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
