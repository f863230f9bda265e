"""A faster drop-in for facenet-pytorch's MTCNN ``detect_face``: same networks, same faces.

facenet-pytorch 2.5.3 loses most of its CPU time to layout and call overhead, not to the
networks' arithmetic (benchmarks/README.md, "MTCNN" has the measured split). What changes:

- R-Net and O-Net receive their stacked 24x24 / 48x48 crops in channels-last layout, where CPU
  max-pooling with ``ceil_mode`` is far faster than in NCHW, in chunks of CPU_CROP_CHUNK crops.
- On the CPU with 8-bit frames, the pyramid levels (``interpolate(mode="area")`` there) and the
  candidates' crops for stages 2 and 3 are read from the frames' integer summed-area tables
  (:class:`FrameTables`), in a few vectorised gathers; on a GPU, where thousands of tiny kernel
  launches are the cost, the crops come from one summed-area table in torch.
- Non-maximum suppression is greedy NMS in numpy (:func:`greedy_nms`), which keeps the boxes
  torchvision's and facenet's keep, without importing torchvision (it imports torch._dynamo:
  about 1.5 s of a scanner's cold start).

Area resampling is the mean over integer windows ``[floor(i*n/s), ceil((i+1)*n/s))``; with
window sums of 8-bit pixels computed exactly in integers and divided as PyTorch's CPU
kernel divides (sum / rows / columns in float32), pyramid levels and crops are bit-identical
to facenet's on CPU. Only the convolutions' float rounding differs between layouts (about
1e-6). The box arithmetic (candidates, regression, squaring, clipping) is computed with the
torch operations facenet computes it with, and each function is tested against facenet's, so
the same candidates meet the same decisions. Two deliberate differences, both where facenet
fails: it drops a candidate whose clipped box is empty from the crops but not from the boxes
and then raises an IndexError (here it is dropped from both), and it raises on an image smaller
than the smallest face searched (here: no faces).

The pretrained P/R/O-Nets are those of the installed facenet-pytorch wheel (pass
``facenet_pytorch.MTCNN``'s ``pnet``, ``rnet``, ``onet``, or OpenVINO's compiled copies from
:mod:`facesleuth.extract.mtcnn_openvino`); no weights live in this repository.

torch and OpenCV are imported inside the functions that use them: :mod:`facesleuth.extract.detect`
imports this module, and steps that never detect import detect (the extraction summary,
``facesleuth faces --help``); torch alone takes seconds to import.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

# facenet-pytorch runs R-Net and O-Net in chunks of 512 crops (fixed_batch_process, "to avoid
# GPU out of memory"), and P-Net on the whole batch. On CPU, smaller chunks keep the
# activations in cache: R-Net and O-Net on 64 crops at a time, P-Net on about 200k pixels (two
# 960x540 frames' first pyramid level), both faster (benchmarks/README.md, "MTCNN"). Outputs
# are bit-identical for every chunk size.
GPU_CROP_CHUNK = 512
CPU_CROP_CHUNK = 64
CPU_PNET_PIXELS = 200_000
# Boxes per gather of the summed-area table (about 57 MB of int64 indices per corner at 48x48).
TABLE_BOXES = 1024
R_NET_SIZE, O_NET_SIZE = 24, 48
CROP_METHODS = ("auto", "loop", "table")
IMPLEMENTATIONS = ("fast", "facenet")


# ---------------------------------------------------------------------------- inputs


def _as_image_batch(imgs: Any, device: Any):
    """What facenet's detect_face accepts (an (H, W, 3) or (B, H, W, 3) array or tensor, a PIL
    image, a list of PIL images or arrays of one size) -> a (B, H, W, 3) tensor on ``device``."""
    import torch

    if isinstance(imgs, np.ndarray):
        imgs = torch.as_tensor(imgs.copy(), device=device)  # a copy, as facenet: the caller's may be read-only
    elif isinstance(imgs, torch.Tensor):
        imgs = imgs.to(device)
    else:
        if not isinstance(imgs, (list, tuple)):
            imgs = [imgs]
        arrays = [np.uint8(img) for img in imgs]
        sizes = sorted({a.shape for a in arrays})
        if len(sizes) != 1:
            raise ValueError(f"MTCNN batches need images of one size, got {sizes}")
        imgs = torch.as_tensor(np.stack(arrays), device=device)
    if imgs.ndim == 3:
        imgs = imgs.unsqueeze(0)
    if imgs.ndim != 4 or imgs.shape[-1] != 3:
        raise ValueError(f"expected RGB images shaped (H, W, 3) or (B, H, W, 3), got {tuple(imgs.shape)}")
    return imgs


def pyramid_scales(height: int, width: int, minsize: float, factor: float) -> list[float]:
    """facenet's image pyramid: from 12 / minsize down by ``factor`` while the shorter side
    stays >= 12 px (the smallest face searched is ``minsize`` px)."""
    scale = 12.0 / minsize
    shorter = min(height, width) * scale
    scales = []
    while shorter >= 12:
        scales.append(scale)
        scale *= factor
        shorter *= factor
    return scales


# ---------------------------------------------------------------------------- area resampling


def area_windows(n: int | np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``adaptive_avg_pool2d``'s windows resizing ``n`` pixels to ``size``: [start, stop)
    (``n`` an (N, 1) array: N rows of windows)."""
    steps = np.arange(size, dtype=np.int64)
    return (steps * n) // size, -((-(steps + 1) * n) // size)


def _sum_dtype(height: int, width: int):
    """int32 while no window sum (at most the frame's sum) can overflow it, else int64."""
    return np.int32 if height * width * 255 < 2**31 else np.int64


@functools.lru_cache(maxsize=8)
def _pyramid_plan(height: int, width: int, sizes: tuple[tuple[int, int], ...]):
    """Per level of a (height, width) frame's pyramid: the flat indices of each output value's
    four summed-area-table corners (4, h, w, 3) and the window heights (h, 1, 1) and widths (w, 1)."""
    channels = np.arange(3)
    plan = []
    for out_h, out_w in sizes:
        (y0, y1), (x0, x1) = area_windows(height, out_h), area_windows(width, out_w)

        def corner(ys, xs):
            return ((ys[:, None, None] * (width + 1) + xs[None, :, None]) * 3 + channels).astype(np.intp)

        corners = np.stack([corner(y1, x1), corner(y0, x1), corner(y1, x0), corner(y0, x0)])
        plan.append((corners, (y1 - y0).astype(np.float32)[:, None, None], (x1 - x0).astype(np.float32)[:, None]))
    return plan


class FrameTables:
    """The summed-area tables of a batch of 8-bit frames (OpenCV's ``integral``: exact integers),
    from which the CPU reads both the pyramid levels and the candidates' crops.

    Both are bit-identical to PyTorch's CPU kernels: each window's sum is an exact integer
    (four table corners), divided as the kernels divide (float32 sum / rows / columns). They
    come out as (N, h, w, 3) float32 memory, an NCHW tensor in the channels-last layout the
    networks take.
    """

    def __init__(self, frames: np.ndarray):
        """``frames``: (B, H, W, 3) uint8."""
        import cv2

        batch, height, width, _ = frames.shape
        # int32 holds every sum of a frame up to 8.4 Mpx; float64 holds larger ones exactly
        dtype = np.int32 if _sum_dtype(height, width) == np.int32 else np.float64
        self.tables = np.empty((batch, height + 1, width + 1, 3), dtype)
        for frame, table in zip(frames, self.tables):  # written in place: no copy of the batch's tables
            cv2.integral(np.ascontiguousarray(frame), table, sdepth=cv2.CV_32S if dtype == np.int32 else cv2.CV_64F)
        self.height, self.width = height, width

    def pyramid(self, sizes: list[tuple[int, int]]):
        """``interpolate(frames, size, mode="area")`` for each (height, width) in ``sizes``:
        four gathers of precomputed corner indices per level, frame by frame."""
        import torch

        plan = _pyramid_plan(self.height, self.width, tuple(sizes))
        levels = [np.empty((len(self.tables), out_h, out_w, 3), np.float32) for out_h, out_w in sizes]
        for index, table in enumerate(self.tables):
            table = table.ravel()
            for level, (corners, rows, cols) in zip(levels, plan):
                sums = table.take(corners)
                window = sums[0] - sums[1]
                window -= sums[2]
                window += sums[3]
                out = level[index]
                # exact while a window's sum is below 2**24, as in every level of a frame at detection size
                np.copyto(out, window, casting="unsafe")
                out /= rows
                out /= cols
        return [torch.from_numpy(level).permute(0, 3, 1, 2) for level in levels]

    def crops(self, image_inds, y0, y1, x0, x1, size: int):
        """Same contract as :func:`crops_by_loop` (boxes as int tensors, float32 out), from the
        tables: TABLE_BOXES boxes per gather, which bounds the indices' memory."""
        import torch

        boxes = [v.cpu().numpy().astype(np.int64) for v in (image_inds, y0, y1, x0, x1)]
        out = np.empty((len(boxes[0]), size, size, 3), np.float32)
        for start in range(0, len(out), TABLE_BOXES):
            part = slice(start, start + TABLE_BOXES)
            self._crops(*(v[part] for v in boxes), size, out[part])
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    def _crops(self, image_inds, y0, y1, x0, x1, size: int, out: np.ndarray) -> None:
        def windows(start, stop):  # area_windows of N boxes, from their starts
            low, high = area_windows((stop - start)[:, None], size)
            return start[:, None] + low, start[:, None] + high

        (ya, yb), (xa, xb) = windows(y0, y1), windows(x0, x1)
        row = (self.width + 1) * 3
        base = image_inds * ((self.height + 1) * row)
        rows_a, rows_b = base[:, None] + ya * row, base[:, None] + yb * row
        cols_a, cols_b = xa[:, :, None] * 3 + np.arange(3), xb[:, :, None] * 3 + np.arange(3)
        flat = self.tables.reshape(-1)

        def corner(rows, cols):
            return flat.take(rows[:, :, None, None] + cols[:, None, :, :])

        window = corner(rows_b, cols_b) - corner(rows_a, cols_b)
        window -= corner(rows_b, cols_a)
        window += corner(rows_a, cols_a)
        np.copyto(out, window, casting="unsafe")
        out /= (yb - ya).astype(np.float32)[:, :, None, None]
        out /= (xb - xa).astype(np.float32)[:, None, :, None]


def crops_by_loop(pixels, image_inds, y0, y1, x0, x1, size: int, dtype):
    """Boxes ``[y0, y1) x [x0, x1)`` of images ``image_inds`` (int tensors, N) of ``pixels``
    ((B, 3, H, W), any layout and dtype) area-resized to ``size`` x ``size`` in ``dtype``, one
    ``adaptive_avg_pool2d`` call each as in facenet, with less Python around each call, the
    box converted to a contiguous float block first (the pooling kernel would copy a strided
    slice anyway); channels-last (N, 3, s, s)."""
    import torch
    import torch.nn.functional as F

    rows = zip(image_inds.tolist(), y0.tolist(), y1.tolist(), x0.tolist(), x1.tolist())
    crops = [
        F.adaptive_avg_pool2d(pixels[i, :, a:b, c:d].to(dtype, memory_format=torch.contiguous_format), (size, size))
        for i, a, b, c, d in rows
    ]
    if not crops:
        return torch.zeros((0, 3, size, size), dtype=dtype, device=pixels.device)
    return torch.stack(crops).contiguous(memory_format=torch.channels_last)


class SummedAreaTable:
    """Area resizing of many boxes at once: four gathers per output value from a summed-area
    table of the frames (exact integers for uint8 frames, float64 otherwise)."""

    def __init__(self, pixels, dtype):
        """``pixels``: (B, 3, H, W) tensor; crops come out in ``dtype``."""
        import torch

        batch, _, height, width = pixels.shape
        if pixels.dtype == torch.uint8:
            sums = torch.int32 if _sum_dtype(height, width) == np.int32 else torch.int64
        else:
            sums = torch.float64
        table = torch.zeros(batch, 3, height + 1, width + 1, dtype=sums, device=pixels.device)
        table[:, :, 1:, 1:] = pixels.to(sums).cumsum(2).cumsum(3)
        self.flat = table.reshape(-1)
        self.height, self.width = height, width
        self.dtype = dtype

    def crops(self, image_inds, y0, y1, x0, x1, size: int):
        """Same contract as :func:`crops_by_loop`; TABLE_BOXES boxes at a time, which bounds
        the gather indices' memory (4 x 8 bytes per output value)."""
        import torch

        parts = [
            self._crops(*(v[i : i + TABLE_BOXES] for v in (image_inds, y0, y1, x0, x1)), size)
            for i in range(0, len(image_inds), TABLE_BOXES)
        ]
        if not parts:
            return torch.zeros((0, 3, size, size), dtype=self.dtype, device=self.flat.device)
        return torch.cat(parts).contiguous(memory_format=torch.channels_last)

    def _crops(self, image_inds, y0, y1, x0, x1, size: int):
        import torch

        device = self.flat.device
        steps = torch.arange(size, device=device)

        def windows(start, stop):  # area_windows, for N boxes at once
            n = (stop - start)[:, None]
            low = start[:, None] + torch.div(steps * n, size, rounding_mode="floor")
            high = start[:, None] - torch.div(-(steps + 1) * n, size, rounding_mode="floor")
            return low, high

        ya, yb = windows(y0.long(), y1.long())
        xa, xb = windows(x0.long(), x1.long())
        plane = (self.height + 1) * (self.width + 1)
        channels = torch.arange(3, device=device) * plane
        base = (image_inds.long() * 3 * plane)[:, None, None, None] + channels[None, :, None, None]

        def corner(ys, xs):
            return self.flat.take(base + (ys * (self.width + 1))[:, None, :, None] + xs[:, None, None, :])

        sums = corner(yb, xb) - corner(ya, xb) - corner(yb, xa) + corner(ya, xa)
        rows = (yb - ya).to(self.dtype)[:, None, :, None]
        cols = (xb - xa).to(self.dtype)[:, None, None, :]
        return sums.to(self.dtype) / rows / cols


# ---------------------------------------------------------------------------- candidate boxes
# MTCNN's box arithmetic, in the torch operations facenet-pytorch 2.5.3 computes it with (the
# same boxes to the bit: tests/test_mtcnn_fast.py compares each function with facenet's), and
# greedy NMS in numpy in place of torchvision's, whose import (it imports torch._dynamo) made
# about 1.5 s of a scanner's cold start (benchmarks/README.md, scan latency).

P_NET_STRIDE, P_NET_CELL = 2, 12  # P-Net's output cells: 12 px windows, 2 px apart
NMS_ROWS = 512  # boxes whose overlaps with all others greedy_nms computes at once (K x 512 bytes)


def candidate_boxes(reg, probs, scale: float, threshold: float):
    """P-Net's windows at one pyramid level (``reg`` (B, 4, h, w), ``probs`` (B, h, w)) that score
    at least ``threshold``: (N, 9) boxes (x0, y0, x1, y1 in frame pixels, score, the 4
    regression offsets) in row-major order, and their (N,) image indices."""
    import torch

    hits = (probs >= threshold).nonzero()  # (N, 3): image, row, column
    image_inds, rows, cols = hits.unbind(1)
    cells = torch.stack([cols, rows], dim=1).to(reg.dtype)  # (x, y) of each window
    top_left = ((P_NET_STRIDE * cells + 1) / scale).floor()
    bottom_right = ((P_NET_STRIDE * cells + P_NET_CELL) / scale).floor()
    offsets = reg.permute(0, 2, 3, 1)[image_inds, rows, cols]
    return torch.cat([top_left, bottom_right, probs[image_inds, rows, cols].unsqueeze(1), offsets], dim=1), image_inds


def regress(boxes, offsets):
    """``boxes`` (N, >=4) moved by the networks' regression ``offsets`` (N, 4), in units of the
    boxes' inclusive widths and heights; columns after the fourth are kept."""
    import torch

    widths = boxes[:, 2] - boxes[:, 0] + 1
    heights = boxes[:, 3] - boxes[:, 1] + 1
    moved = torch.stack([boxes[:, 0] + offsets[:, 0] * widths, boxes[:, 1] + offsets[:, 1] * heights,
                         boxes[:, 2] + offsets[:, 2] * widths, boxes[:, 3] + offsets[:, 3] * heights], dim=1)
    return torch.cat([moved, boxes[:, 4:]], dim=1)


def square(boxes):
    """``boxes`` grown to squares of their longer side about their centres (other columns kept)."""
    import torch

    heights = boxes[:, 3] - boxes[:, 1]
    widths = boxes[:, 2] - boxes[:, 0]
    side = torch.max(widths, heights)
    x0 = boxes[:, 0] + widths * 0.5 - side * 0.5
    y0 = boxes[:, 1] + heights * 0.5 - side * 0.5
    return torch.cat([torch.stack([x0, y0, x0 + side, y0 + side], dim=1), boxes[:, 4:]], dim=1)


def clipped_corners(boxes, width: int, height: int):
    """Each box's truncated integer corners clipped to the frame, 1-based and inclusive as
    MTCNN cuts them: (y0, y1, x0, x1) long tensors, the box being rows y0 - 1 .. y1 - 1."""
    import torch

    corners = boxes[:, :4].trunc().int().long()
    x0, y0 = corners[:, 0].clamp(min=1), corners[:, 1].clamp(min=1)
    x1, y1 = corners[:, 2].clamp(max=width), corners[:, 3].clamp(max=height)
    return y0, y1, x0, x1


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, overlap: str = "union") -> np.ndarray:
    """Indices of the boxes (K, 4) greedy non-maximum suppression keeps, highest score first.

    ``overlap``: "union" (intersection over union of the boxes' areas, as torchvision's nms
    computes it: a box is dropped above ``threshold``) or "min" (intersection over the smaller
    box, with MTCNN's inclusive pixel areas, +1 on each side). Float32 arithmetic in the order
    those kernels use, compared with the threshold in float64 as they compare.
    """
    order = np.argsort(-scores, kind="stable")
    boxes = np.asarray(boxes, np.float32)[order]
    x0, y0, x1, y1 = (np.ascontiguousarray(boxes[:, i]) for i in range(4))
    inclusive = np.float32(1 if overlap == "min" else 0)
    areas = (x1 - x0 + inclusive) * (y1 - y0 + inclusive)

    def overlaps(rows: slice) -> np.ndarray:  # (rows, K): whether box row drops box column
        top = (x0[rows, None], y0[rows, None], x1[rows, None], y1[rows, None], areas[rows, None])
        widths = np.maximum(np.float32(0), np.minimum(top[2], x1) - np.maximum(top[0], x0) + inclusive)
        heights = np.maximum(np.float32(0), np.minimum(top[3], y1) - np.maximum(top[1], y0) + inclusive)
        inter = widths * heights
        ratio = inter / (np.minimum(top[4], areas) if overlap == "min" else top[4] + areas - inter)
        return ratio.astype(np.float64) > threshold

    dropped = np.zeros(len(order), bool)
    keep = []
    # the boxes' overlaps computed NMS_ROWS rows at a time, all at once; each kept box then
    # drops the later boxes it overlaps
    for start in range(0, len(order), NMS_ROWS):
        block = overlaps(slice(start, start + NMS_ROWS))
        for row, i in enumerate(range(start, min(start + NMS_ROWS, len(order)))):
            if not dropped[i]:
                keep.append(i)
                dropped[i + 1 :] |= block[row, i + 1 :]
    return order[np.asarray(keep, dtype=np.int64)]


def batched_nms(boxes, scores, image_inds, threshold: float, overlap: str = "union"):
    """:func:`greedy_nms` within each image (the boxes of different images shifted apart first,
    as torchvision's and facenet's batched NMS do): a long tensor of the kept indices."""
    import torch

    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    shifted = boxes + (image_inds.to(boxes) * (boxes.max() + 1))[:, None]
    keep = greedy_nms(shifted.cpu().numpy(), scores.cpu().numpy(), threshold, overlap)
    return torch.from_numpy(keep).to(boxes.device)


# ---------------------------------------------------------------------------- stages


def _network_inputs(crop, boxes, image_inds, width: int, height: int, size: int):
    """Each candidate clipped to the frame, area-resized to ``size`` and normalised.

    Returns the normalised crops and the mask of candidates whose clipped box is not empty.
    """
    y, ey, x, ex = clipped_corners(boxes, width, height)
    # rows (y - 1):ey and columns (x - 1):ex: 1-based inclusive corners
    valid = (ey > y - 1) & (ex > x - 1)
    crops = crop(image_inds[valid], (y - 1)[valid], ey[valid], (x - 1)[valid], ex[valid], size)
    return (crops - 127.5) * 0.0078125, valid


def _run_chunked(net, inputs, chunk: int):
    """``net`` over ``inputs`` in chunks of ``chunk``, outputs concatenated (fixed_batch_process)."""
    import torch

    outputs = [net(inputs[i : i + chunk]) for i in range(0, len(inputs), chunk)]
    return tuple(torch.cat(parts, dim=0) for parts in zip(*outputs))


def detect_face(imgs, minsize, pnet, rnet, onet, threshold, factor, device, crop_method: str = "auto"):
    """Same arguments and results as facenet-pytorch 2.5.3's
    ``facenet_pytorch.models.utils.detect_face.detect_face``: per image an object array
    entry holding (K, 5) boxes (x0, y0, x1, y1, probability) and one holding (K, 5, 2)
    landmarks, in descending probability per image.

    ``crop_method``: "loop" (one resize call per box, as facenet) or "table" (summed-area
    tables, vectorised: on the CPU with 8-bit frames and float32 networks the pyramid's
    :class:`FrameTables`, else :class:`SummedAreaTable` in torch); "auto" is "table".
    """
    import torch
    import torch.nn.functional as F

    if crop_method not in CROP_METHODS:
        raise ValueError(f"crop_method must be one of {CROP_METHODS}, got {crop_method!r}")
    frames = _as_image_batch(imgs, device)
    # a compiled stand-in for the torch network (mtcnn_openvino) says its dtype; it has no parameters
    model_dtype = getattr(pnet, "dtype", None) or next(pnet.parameters()).dtype
    # A permute of NHWC memory is a channels-last view: the convolutions run channels-last.
    pixels = frames.permute(0, 3, 1, 2)
    batch_size = len(pixels)
    h, w = pixels.shape[2:4]
    device = pixels.device
    on_cpu = device.type == "cpu"
    crop_chunk = CPU_CROP_CHUNK if on_cpu else GPU_CROP_CHUNK

    # ---- stage 1: P-Net over the pyramid
    scales = pyramid_scales(h, w, minsize, factor)
    sizes = [(int(h * scale + 1), int(w * scale + 1)) for scale in scales]
    # 8-bit frames on the CPU: pyramid and crops read from one set of integer tables
    tables = FrameTables(frames.numpy()) if on_cpu and frames.dtype == torch.uint8 and model_dtype == torch.float32 else None
    if tables is not None:
        levels = tables.pyramid(sizes)
    else:
        imgs = pixels.type(model_dtype)
        levels = (F.interpolate(imgs, size=size, mode="area") for size in sizes)
    boxes = [torch.zeros(0, 9, device=device, dtype=model_dtype)]
    image_inds = [torch.zeros(0, dtype=torch.long, device=device)]
    scale_picks = [torch.zeros(0, dtype=torch.long, device=device)]
    offset = 0
    for scale, level in zip(scales, levels):
        pnet_chunk = max(1, CPU_PNET_PIXELS // (level.shape[2] * level.shape[3])) if on_cpu else batch_size
        reg, probs = _run_chunked(pnet, (level - 127.5) * 0.0078125, pnet_chunk)
        boxes_scale, image_inds_scale = candidate_boxes(reg, probs[:, 1], scale, threshold[0])
        boxes.append(boxes_scale)
        image_inds.append(image_inds_scale)
        pick = batched_nms(boxes_scale[:, :4], boxes_scale[:, 4], image_inds_scale, 0.5)
        scale_picks.append(pick + offset)
        offset += boxes_scale.shape[0]
    scale_picks = torch.cat(scale_picks)
    boxes, image_inds = torch.cat(boxes)[scale_picks], torch.cat(image_inds)[scale_picks]

    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds = boxes[pick], image_inds[pick]
    regw = boxes[:, 2] - boxes[:, 0]
    regh = boxes[:, 3] - boxes[:, 1]
    qq1 = boxes[:, 0] + boxes[:, 5] * regw
    qq2 = boxes[:, 1] + boxes[:, 6] * regh
    qq3 = boxes[:, 2] + boxes[:, 7] * regw
    qq4 = boxes[:, 3] + boxes[:, 8] * regh
    boxes = square(torch.stack([qq1, qq2, qq3, qq4, boxes[:, 4]]).permute(1, 0))

    if crop_method == "loop":

        def crop(*box_args):
            return crops_by_loop(pixels, *box_args, dtype=model_dtype)

    elif tables is not None:
        crop = tables.crops
    else:
        crop = SummedAreaTable(pixels, model_dtype).crops if len(boxes) else None

    # ---- stage 2: R-Net refines and filters the candidates
    if len(boxes) > 0:
        im_data, valid = _network_inputs(crop, boxes, image_inds, w, h, R_NET_SIZE)
        boxes, image_inds = boxes[valid], image_inds[valid]
    if len(boxes) > 0:
        out0, out1 = (part.permute(1, 0) for part in _run_chunked(rnet, im_data, crop_chunk))
        score = out1[1, :]
        ipass = score > threshold[1]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        image_inds = image_inds[ipass]
        mv = out0[:, ipass].permute(1, 0)
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes, image_inds, mv = boxes[pick], image_inds[pick], mv[pick]
        boxes = square(regress(boxes, mv))

    # ---- stage 3: O-Net scores, regresses and finds landmarks; "Min" NMS
    points = torch.zeros(0, 5, 2, device=device)
    if len(boxes) > 0:
        im_data, valid = _network_inputs(crop, boxes, image_inds, w, h, O_NET_SIZE)
        boxes, image_inds = boxes[valid], image_inds[valid]
    if len(boxes) > 0:
        out0, out1, out2 = (part.permute(1, 0) for part in _run_chunked(onet, im_data, crop_chunk))
        score = out2[1, :]
        ipass = score > threshold[2]
        points = out1[:, ipass]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        image_inds = image_inds[ipass]
        mv = out0[:, ipass].permute(1, 0)

        w_i = boxes[:, 2] - boxes[:, 0] + 1
        h_i = boxes[:, 3] - boxes[:, 1] + 1
        points_x = w_i.repeat(5, 1) * points[:5, :] + boxes[:, 0].repeat(5, 1) - 1
        points_y = h_i.repeat(5, 1) * points[5:10, :] + boxes[:, 1].repeat(5, 1) - 1
        points = torch.stack((points_x, points_y)).permute(2, 1, 0)
        boxes = regress(boxes, mv)
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "min")
        boxes, image_inds, points = boxes[pick], image_inds[pick], points[pick]

    boxes = boxes.cpu().numpy()
    points = points.cpu().numpy()
    image_inds = image_inds.cpu().numpy()
    batch_boxes = np.empty(batch_size, dtype=object)
    batch_points = np.empty(batch_size, dtype=object)
    for b_i in range(batch_size):
        mine = np.flatnonzero(image_inds == b_i)
        batch_boxes[b_i] = boxes[mine].copy()
        batch_points[b_i] = points[mine].copy()
    return batch_boxes, batch_points


def detect(
    mtcnn: Any, imgs: Any, implementation: str = "fast", landmarks: bool = False
) -> list[tuple[np.ndarray, ...]]:
    """Faces in each image of a batch, with a ``facenet_pytorch.MTCNN``'s networks and settings
    (min_face_size, thresholds, factor, device): per image (K, 4) float32 boxes x0, y0, x1, y1
    and (K,) float32 probabilities, in descending probability (MTCNN.detect's order with
    ``select_largest=False``), as plain arrays rather than numpy-2 object arrays. With
    ``landmarks``, a third part: (K, 5, 2) float32 landmarks (O-Net's, computed in any case).

    ``implementation``: "fast" (this module) or "facenet" (facenet-pytorch's detect_face).
    """
    import torch

    if implementation == "fast":
        run = detect_face
    elif implementation == "facenet":
        from facenet_pytorch.models.utils.detect_face import detect_face as run
    else:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    with torch.no_grad():
        batch_boxes, batch_points = run(
            imgs, mtcnn.min_face_size, mtcnn.pnet, mtcnn.rnet, mtcnn.onet, mtcnn.thresholds, mtcnn.factor, mtcnn.device
        )
    results = []
    for found, points in zip(batch_boxes, batch_points):
        found = np.asarray(found, dtype=np.float32).reshape(-1, 5)
        result = (found[:, :4].copy(), found[:, 4].copy())
        if landmarks:
            result += (np.asarray(points, dtype=np.float32).reshape(-1, 5, 2).copy(),)
        results.append(result)
    return results
