"""Pose skeleton drawing for WanAnimatePreprocess's PoseDetectionOneToAllAnimation, pixel for pixel the
pack's own `onetoall.utils.draw_pose_aligned`, about ten times faster.

The pack draws every frame on a canvas 4.5x the video's size (2160 px on the short side) and dims the
body limbs with `(canvas * 0.6).astype(uint8)`: a float64 copy of a 24 MB canvas, 60-80 ms a frame,
7-8 s of an 81-frame job on one CPU core, most of the pose node's time. Here the same cv2 primitives
draw on the same canvas, and the dimming is applied to each limb's colour instead of the canvas: a fill
overwrites what is under it, so a pixel ends up dim(last colour) either way, and int(v * 0.6) for each
uint8 v is what a 256-entry table holds.

Exactness is checked where it matters, on the job's own data: the first frame a process draws is drawn
both ways and compared; on any difference the pack's function is put back for good and the difference
logged. Calls this drawing does not cover (a pose plan, another reference width) go to the pack's code.
"""

import importlib
import logging
import math
import sys

import cv2
import numpy as np

log = logging.getLogger("steadydancer_runtime")

# ComfyUI registers a pack under its folder's path; the drawing module is imported by the node on first use.
PACK_PACKAGE_SUFFIX = "ComfyUI-WanAnimatePreprocess"
DRAWING_MODULE = ".onetoall.utils"
# The pack's drawing constants (OpenPose's 18-joint body, its limb pairs and colours; 21-point hands).
BODY_LIMBS = (
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11),
    (2, 12), (12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18),
)
BODY_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
HAND_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
    (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20),
)
FACE_SKIPPED = frozenset(range(0, 17)) | frozenset(range(27, 36))  # chin and nose line
DRAW_THRESHOLD = 0.3
EPS = 0.01
DIM = (np.arange(256) * 0.6).astype(np.uint8)  # int(v * 0.6) for every uint8 v


def _stroke(width, height, base):
    """Line width for a canvas: the base width scaled by the canvas's long side, in the pack's steps."""
    side = max(width, height)
    for bound, ratio in ((512, 1.0), (1080, 1.5), (2160, 2.0), (3240, 2.5), (4320, 3.5), (5400, 4.5)):
        if side < bound:
            return int(base * ratio)
    return int(base * 4.0)


def _hue_color(hue):
    """RGB (float32, 0-255) of a fully saturated, full-value hue in [0, 1), computed with the same
    dtypes as the pack's hsv_to_rgb so that the colours match to the last bit."""
    h = np.asarray([hue], dtype=np.float32)
    sector = (h * 6.0).astype(int)
    frac = (h * 6.0) - sector
    one = np.float32(1.0)
    rising = one * (1.0 - one * (1.0 - frac))
    falling = one * (1.0 - one * frac)
    zero = one * (1.0 - one)
    channels = {
        0: (one, rising, zero), 1: (falling, one, zero), 2: (zero, one, rising),
        3: (zero, falling, one), 4: (rising, zero, one), 5: (one, zero, falling),
    }[int(sector[0]) % 6]
    return np.array([float(np.asarray(c).reshape(-1)[0]) for c in channels], dtype=np.float32) * 255


HAND_COLORS = tuple(_hue_color(k / float(len(HAND_EDGES))) for k in range(len(HAND_EDGES)))


def _scaled(color, alpha):
    return [int(c * alpha) for c in color]


def _draw_body(canvas, candidate, subset, score):
    height, width = canvas.shape[:2]
    stroke = _stroke(width, height, 3)
    for limb, pair in enumerate(BODY_LIMBS):
        ends = np.array(pair) - 1
        for person in range(len(subset)):
            index = subset[person][ends]
            conf = score[person][ends]
            if -1 in index:
                continue
            alpha = max(conf[0] * conf[1], 0) if conf[0] > 0 and conf[1] > 0 else 0.35
            if conf[0] == 0 or conf[1] == 0:
                alpha = 0
            ys = candidate[index.astype(int), 0] * float(width)
            xs = candidate[index.astype(int), 1] * float(height)
            length = ((xs[0] - xs[1]) ** 2 + (ys[0] - ys[1]) ** 2) ** 0.5
            angle = math.degrees(math.atan2(xs[0] - xs[1], ys[0] - ys[1]))
            polygon = cv2.ellipse2Poly((int(np.mean(ys)), int(np.mean(xs))), (int(length / 2), stroke), int(angle), 0, 360, 1)
            # The pack dims the whole canvas after the limbs; a fill overwrites (no blending), so dimming
            # each fill's colour (saturated to uint8 first, as cv2 does) gives the same pixels, no pass.
            color = _scaled(BODY_COLORS[limb], alpha)
            cv2.fillConvexPoly(canvas, polygon, [int(DIM[min(max(c, 0), 255)]) for c in color])
    for joint in range(18):
        for person in range(len(subset)):
            index = int(subset[person][joint])
            if index == -1:
                continue
            x, y = candidate[index][0:2]
            conf = score[person][joint]
            alpha = 0 if conf == -2 else max(conf, 0)
            cv2.circle(canvas, (int(x * width), int(y * height)), stroke, _scaled(BODY_COLORS[joint], alpha), thickness=-1)


def _draw_hands(canvas, peaks_per_hand, scores_per_hand):
    height, width = canvas.shape[:2]
    stroke = _stroke(width, height, 2)
    for peaks, scores in zip(peaks_per_hand, scores_per_hand):
        for edge, (a, b) in enumerate(HAND_EDGES):
            if scores[a] < DRAW_THRESHOLD or scores[b] < DRAW_THRESHOLD:
                continue
            x1, y1 = int(peaks[a][0] * width), int(peaks[a][1] * height)
            x2, y2 = int(peaks[b][0] * width), int(peaks[b][1] * height)
            strength = int(scores[a] * scores[b] * 255)
            if x1 > EPS and y1 > EPS and x2 > EPS and y2 > EPS:
                color = tuple(int(c * strength / 255) for c in HAND_COLORS[edge])
                cv2.line(canvas, (x1, y1), (x2, y2), color, thickness=stroke)
        for point, score in zip(peaks, scores):
            if score < DRAW_THRESHOLD:
                continue
            x, y = int(point[0] * width), int(point[1] * height)
            if x > EPS and y > EPS:
                cv2.circle(canvas, (x, y), stroke, (0, 0, int(score * 255)), thickness=-1)


def _draw_face(canvas, landmarks_per_face, scores_per_face, weak):
    height, width = canvas.shape[:2]
    stroke = _stroke(width, height, 2)
    for landmarks, scores in zip(landmarks_per_face, scores_per_face):
        for idx, (point, score) in enumerate(zip(landmarks, scores)):
            if idx in FACE_SKIPPED or score < DRAW_THRESHOLD:
                continue
            x, y = int(point[0] * width), int(point[1] * height)
            shade = int(score * 255)
            if weak:
                shade = int(shade * 0.35)
            if x > EPS and y > EPS:
                cv2.circle(canvas, (x, y), stroke, (shade, shade, shade), thickness=-1)


def draw_pose(pose, H, W, without_face=False, head_strength="full", face_change=False, ref_w=2160):
    """One pose (the pack's dwpose dict) drawn as an HxWx3 uint8 image."""
    bodies = pose["bodies"]
    score = bodies["score"].copy()
    head = [0, 14, 15, 16, 17]
    if head_strength == "weak":
        score[:, head] = -2
    elif head_strength == "none":
        score[:, head] = 0
    short = min(H, W)
    scale = (ref_w / short) if short != ref_w else 1
    canvas = np.zeros((int(H * scale), int(W * scale), 3), dtype=np.uint8)
    _draw_body(canvas, np.array(bodies["candidate"]), np.array(bodies["subset"]), score)
    _draw_hands(canvas, pose["hands"], pose["hands_score"])
    if not without_face:
        _draw_face(canvas, pose["faces"], pose["faces_score"], face_change)
    return cv2.resize(canvas, (W, H))


def checked(original):
    """`original`'s signature, drawn by draw_pose; the first call compares both and keeps the pack's on a difference."""
    state = {"verified": False, "failed": False}

    def draw_pose_aligned(pose, H, W, ref_w=2160, without_face=False, pose_plan=None, head_strength="full", face_change=False):
        options = dict(ref_w=ref_w, without_face=without_face, head_strength=head_strength, face_change=face_change)
        if state["failed"] or pose_plan is not None:
            return original(pose, H, W, pose_plan=pose_plan, **options)
        try:
            ours = draw_pose(pose, H, W, **options)
        except Exception as exc:  # a pose shape we do not know: the pack's drawing, from now on
            state["failed"] = True
            log.error("steadydancer_runtime: fast pose drawing failed (%s); using the pack's drawing", exc)
            return original(pose, H, W, **options)
        if not state["verified"]:
            theirs = original(pose, H, W, **options)
            if theirs.shape != ours.shape or not np.array_equal(theirs, ours):
                state["failed"] = True
                differing = int(np.count_nonzero(theirs != ours)) if theirs.shape == ours.shape else -1
                log.error("steadydancer_runtime: fast pose drawing differs from the pack's (%d values); using the pack's drawing", differing)
                return theirs
            state["verified"] = True
            log.info("steadydancer_runtime: fast pose drawing matches the pack's on the first frame")
        return ours

    draw_pose_aligned.steadydancer_fast = True
    return draw_pose_aligned


def install():
    """Replaces the pack's draw_pose_aligned. The pack imports its drawing module only when its node first
    runs, so this imports it (by the pack's own package) and patches it. False while no pose pack is loaded."""
    packs = [name for name in list(sys.modules) if name.endswith(PACK_PACKAGE_SUFFIX)]
    if not packs:
        return False
    for pack in packs:
        module = importlib.import_module(pack + DRAWING_MODULE)
        if not getattr(module.draw_pose_aligned, "steadydancer_fast", False):
            module.draw_pose_aligned = checked(module.draw_pose_aligned)
            log.info("steadydancer_runtime: fast pose drawing installed in %s", pack.rsplit("/", 1)[-1])
    return True
