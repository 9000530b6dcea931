"""Stand-in ONNX pose models with the I/O contract ComfyUI-WanAnimatePreprocess relies on.

yolov10m: images [B,3,640,640] -> output0 [B,300,6] (x1, y1, x2, y2, score, class in 640-px
input coordinates); ViTPose-H wholebody: input [B,3,256,192] -> heatmaps [B,133,64,48].
"tiny" nets are a few layers; "real" nets have about the real parameter counts and compute
(a plain conv stack of ~16 M parameters; a ViT-H/16 backbone with ViTPose's deconv head, ~630 M),
so CPU vs GPU timings mean something.

Random weights give random detections and keypoints, and the preprocessing after the nets
(box selection, crops, pose alignment and drawing) behaves differently on noise than on a person.
So each net's output is a fixed, person-shaped answer (one box; a standing pose's heatmap peaks)
plus 1e-3 * tanh(net output): the whole net still runs, the downstream code sees a person.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile

import numpy as np
import torch
from torch import nn

YOLO_INPUT = (3, 640, 640)
YOLO_DETECTIONS = 300
VITPOSE_INPUT = (3, 256, 192)
VITPOSE_KEYPOINTS = 133
HEATMAP = (64, 48)
OPSET = 17
NET_WEIGHT = 1e-3

# One person in the 640x640 detector input: x1, y1, x2, y2, score, class 0 (person).
PERSON_BOX = (160.0, 40.0, 480.0, 620.0, 0.9, 0.0)

# A standing person in heatmap pixels (x of 48, y of 64), COCO-WholeBody order: 17 body
# points, then 6 feet; the 68 face and 2 x 21 hand points are placed around the nose and wrists.
BODY = [(24, 9), (25.5, 7.5), (22.5, 7.5), (27, 8.5), (21, 8.5), (29, 15), (19, 15), (31, 23), (17, 23),
        (32, 30), (16, 30), (27.5, 32), (20.5, 32), (28, 43), (20, 43), (28, 54), (20, 54)]
FEET = [(30, 57), (31, 56), (27, 55.5), (18, 57), (17, 56), (21, 55.5)]


def _ring(center: tuple[float, float], rx: float, ry: float, n: int) -> list[tuple[float, float]]:
    return [(center[0] + rx * math.cos(2 * math.pi * i / n), center[1] + ry * math.sin(2 * math.pi * i / n))
            for i in range(n)]


def pose_heatmaps() -> torch.Tensor:
    points = BODY + FEET + _ring(BODY[0], 3, 3.5, 68) + _ring(BODY[9], 1.5, 1.5, 21) + _ring(BODY[10], 1.5, 1.5, 21)
    assert len(points) == VITPOSE_KEYPOINTS
    ys, xs = np.mgrid[0:HEATMAP[0], 0:HEATMAP[1]]
    maps = np.stack([0.9 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5 ** 2)) for x, y in points])
    return torch.from_numpy(maps.astype(np.float32))[None]


def detections() -> torch.Tensor:
    out = torch.zeros(1, YOLO_DETECTIONS, 6)
    out[0, 0] = torch.tensor(PERSON_BOX)
    return out


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.SiLU())


class YoloStandIn(nn.Module):
    # (channels, extra 3x3 convs) per stride-2 stage after a stride-2 stem: real ends at stride 32
    # (20x20 cells, 400 >= 300 detections), tiny at stride 16.
    STAGES = {"tiny": [(16, 0), (32, 0), (32, 0)], "real": [(96, 3), (192, 3), (384, 2), (576, 3)]}
    STEM = {"tiny": 8, "real": 48}

    def __init__(self, size: str) -> None:
        super().__init__()
        layers, cin = [_conv(3, self.STEM[size], 2)], self.STEM[size]
        for cout, repeats in self.STAGES[size]:
            layers += [_conv(cin, cout, 2)] + [_conv(cout, cout) for _ in range(repeats)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, 6, 1)
        self.register_buffer("answer", detections())
        # The class column stays exact: the preprocessing matches it with `class_id + 1 in [1]`.
        self.register_buffer("noisy", torch.tensor([1.0, 1, 1, 1, 1, 0]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        cells = self.head(self.body(images)).flatten(2)[:, :, :YOLO_DETECTIONS].transpose(1, 2)
        return self.answer + NET_WEIGHT * torch.tanh(cells) * self.noisy


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class ViTPoseStandIn(nn.Module):
    # ViTPose-H: ViT-H/16 (dim 1280, 32 blocks, 16 heads, padded patch embedding -> 16x12 tokens)
    # and the classic head: two 4x4 stride-2 deconvs of 256 channels, then a 1x1 conv.
    CONFIGS = {"tiny": (64, 2, 4, 32), "real": (1280, 32, 16, 256)}

    def __init__(self, size: str) -> None:
        super().__init__()
        dim, depth, heads, head_channels = self.CONFIGS[size]
        self.patch = nn.Conv2d(3, dim, 16, 16, padding=2)
        self.grid = (VITPOSE_INPUT[1] // 16, VITPOSE_INPUT[2] // 16)
        self.pos = nn.Parameter(torch.randn(1, self.grid[0] * self.grid[1], dim) * 0.02)
        self.blocks = nn.Sequential(*[_Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(
            nn.ConvTranspose2d(dim, head_channels, 4, 2, 1, bias=False), nn.BatchNorm2d(head_channels), nn.ReLU(),
            nn.ConvTranspose2d(head_channels, head_channels, 4, 2, 1, bias=False), nn.BatchNorm2d(head_channels),
            nn.ReLU(), nn.Conv2d(head_channels, VITPOSE_KEYPOINTS, 1))
        self.register_buffer("answer", pose_heatmaps())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        tokens = self.blocks(self.patch(image).flatten(2).transpose(1, 2) + self.pos)
        grid = self.norm(tokens).transpose(1, 2).reshape(image.shape[0], -1, *self.grid)
        return self.answer + NET_WEIGHT * torch.tanh(self.head(grid))


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def export_yolo(path: str, size: str) -> int:
    """Writes the detector; returns its parameter count."""
    model = YoloStandIn(size).eval()
    _export(model, torch.rand(1, *YOLO_INPUT), path, "images", "output0")
    return params(model)


def export_vitpose(path: str, data_path: str, size: str) -> int:
    """Writes the pose model with every weight in data_path (ONNX external data, which must sit
    beside the graph: onnxruntime resolves it relative to the .onnx file)."""
    if os.path.dirname(os.path.abspath(path)) != os.path.dirname(os.path.abspath(data_path)):
        raise ValueError(f"{data_path} must be in the same folder as {path}")
    import onnx

    model = ViTPoseStandIn(size).eval()
    staging = tempfile.mkdtemp(prefix=".vitpose-export-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        staged = os.path.join(staging, "model.onnx")
        _export(model, torch.randn(1, *VITPOSE_INPUT), staged, "input", "heatmaps")
        proto = onnx.load(staged, load_external_data=True)
        for target in (path, data_path):
            if os.path.exists(target):
                os.remove(target)  # onnx appends to an existing data file
        onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(data_path), size_threshold=0)
        os.chmod(data_path, os.stat(path).st_mode)  # onnx creates it owner-only
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return params(model)


def _export(model: nn.Module, example: torch.Tensor, path: str, input_name: str, output_name: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with torch.no_grad():
        # dynamo=False: the TorchScript exporter needs no onnxscript and handles >2 GB models
        # by writing external data, which export_vitpose then gathers into one file.
        torch.onnx.export(model, (example,), path, input_names=[input_name], output_names=[output_name],
                          dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                          opset_version=OPSET, dynamo=False)


def verify_pose(env, yolo_name: str, vitpose_name: str) -> dict:
    """Loads both nets with the pinned OnnxDetectionModelLoader's classes (Yolo, ViTPose from
    ComfyUI-WanAnimatePreprocess/models/onnx_models.py) on the CPU provider and runs one frame
    the way PoseDetectionOneToAllAnimation does: the detector must find the person."""
    from .diffusion import LoaderExpectationError

    onnx_models = env.import_preprocess("models.onnx_models")
    yolo = onnx_models.Yolo(env.folder_paths.get_full_path_or_raise("detection", yolo_name), "CPUExecutionProvider")
    vitpose = onnx_models.ViTPose(env.folder_paths.get_full_path_or_raise("detection", vitpose_name),
                                  "CPUExecutionProvider")
    frame = np.random.default_rng(0).random((1, *YOLO_INPUT), dtype=np.float32)
    raw = yolo.session.run(None, {yolo.input_name: frame})[0]
    person = yolo(frame, np.array([[480, 832]]))[0][0]["bbox"]
    crop = np.random.default_rng(1).standard_normal((1, *VITPOSE_INPUT)).astype(np.float32)
    heatmaps = vitpose.session.run(None, {vitpose.input_name: crop})[0]
    keypoints = vitpose(crop, np.array([[416.0, 240.0]]), np.array([[2.0, 2.7]]))
    facts = {"yolo_output": list(raw.shape), "person_score": float(person[-1]),
             "vitpose_output": list(heatmaps.shape), "keypoints": list(keypoints.shape)}
    wanted = {"yolo_output": [1, YOLO_DETECTIONS, 6], "vitpose_output": [1, VITPOSE_KEYPOINTS, *HEATMAP],
              "keypoints": [1, VITPOSE_KEYPOINTS, 3]}
    wrong = {k: (facts[k], v) for k, v in wanted.items() if facts[k] != v}
    if wrong or facts["person_score"] <= 0 or not np.isfinite(heatmaps).all():
        raise LoaderExpectationError(f"pose models: {wrong or facts} (got, expected)")
    return facts
