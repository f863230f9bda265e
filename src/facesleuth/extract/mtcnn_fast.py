"""A faster drop-in for facenet-pytorch's MTCNN ``detect_face``: same networks, same faces.

facenet-pytorch 2.5.3 loses most of its CPU time to layout and call overhead, not to the
networks' arithmetic (benchmarks/README.md, "MTCNN" has the measured split). What changes:

- R-Net and O-Net receive their stacked 24x24 / 48x48 crops in channels-last layout, where CPU
  max-pooling with ``ceil_mode`` is far faster than in NCHW, in chunks of CPU_CROP_CHUNK crops.
- A pyramid level (``interpolate(mode="area")`` there) is, on CPU and 8-bit frames, read from
  the frame's integer summed-area table, four gathers per level.
- Stage 2 and 3 cut and resize each candidate with less overhead per box on CPU (a vectorised
  gather costs more there); on a GPU, where thousands of tiny kernel launches are the cost, all
  crops come from one summed-area table in a few vectorised gathers.

Area resampling is the mean over integer windows ``[floor(i*n/s), ceil((i+1)*n/s))``; with
window sums of 8-bit pixels computed exactly in integers and divided as PyTorch's CPU
kernel divides (sum / rows / columns in float32), pyramid levels and crops are bit-identical
to facenet's on CPU. Only the convolutions' float rounding differs between layouts (about
1e-6). Everything else (P-Net, box generation, NMS, regression, the stage-3 "Min" NMS) is
facenet-pytorch's own code, called from here, so the same candidates meet the same
decisions. Two deliberate differences, both where facenet fails: it drops a candidate whose
clipped box is empty from the crops but not from the boxes and then raises an IndexError
(here it is dropped from both), and it raises on an image smaller than the smallest face
searched (here: no faces).

The pretrained P/R/O-Nets are those of the installed facenet-pytorch wheel (pass
``facenet_pytorch.MTCNN``'s ``pnet``, ``rnet``, ``onet``); no weights live in this repository.

torch, torchvision and facenet-pytorch are imported inside the functions that use them:
:mod:`facesleuth.extract.detect` imports this module, and steps that never detect import detect
(the extraction summary, ``facesleuth faces --help``); torch alone takes seconds to import.
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


def area_windows(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``adaptive_avg_pool2d``'s windows resizing ``n`` pixels to ``size``: [start, stop)."""
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


def area_pyramid(frames: np.ndarray, sizes: list[tuple[int, int]]):
    """``interpolate(frames, size, mode="area")`` for each (height, width) in ``sizes``, as
    channels-last float32 tensors, from (B, H, W, 3) uint8 ``frames``.

    Bit-identical to PyTorch's CPU kernel: each window's sum is an exact integer from the frame's
    summed-area table (OpenCV's ``integral``), taken with one gather per corner for the whole
    level, and divided as the kernel divides (float32 sum / rows / columns). Frame by frame, so
    the table stays in cache (benchmarks/README.md, "MTCNN").
    """
    import cv2
    import torch

    batch, height, width, _ = frames.shape
    # int32 holds every sum of a frame up to 8.4 Mpx; float64 holds larger ones exactly
    depth = cv2.CV_32S if _sum_dtype(height, width) == np.int32 else cv2.CV_64F
    plan = _pyramid_plan(height, width, tuple(sizes))
    levels = [np.empty((batch, out_h, out_w, 3), np.float32) for out_h, out_w in sizes]
    for index, frame in enumerate(frames):
        table = cv2.integral(np.ascontiguousarray(frame), sdepth=depth).ravel()
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
    # (B, h, w, 3) memory is an NCHW tensor in channels-last layout, as the networks take it
    return [torch.from_numpy(level).permute(0, 3, 1, 2) for level in levels]


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


# ---------------------------------------------------------------------------- stages


def _network_inputs(crop, boxes, image_inds, width: int, height: int, size: int):
    """facenet's ``pad`` + per-box ``imresample`` + normalisation, for all candidates.

    Returns the normalised crops and the mask of candidates whose clipped box is not empty.
    """
    import torch
    from facenet_pytorch.models.utils.detect_face import pad

    y, ey, x, ex = (torch.as_tensor(v, device=boxes.device) for v in pad(boxes, width, height))
    # facenet slices rows (y - 1):ey and columns (x - 1):ex (1-based inclusive corners).
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

    ``crop_method``: "loop" (per-box resize calls, fastest on CPU), "table" (summed-area
    table, vectorised, fastest on GPUs) or "auto" (loop on CPU, table elsewhere).
    """
    import torch
    from facenet_pytorch.models.utils.detect_face import (
        batched_nms_numpy,
        bbreg,
        generateBoundingBox,
        imresample,
        rerec,
    )
    from torchvision.ops.boxes import batched_nms

    if crop_method not in CROP_METHODS:
        raise ValueError(f"crop_method must be one of {CROP_METHODS}, got {crop_method!r}")
    frames = _as_image_batch(imgs, device)
    model_dtype = next(pnet.parameters()).dtype
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
    if on_cpu and frames.dtype == torch.uint8 and model_dtype == torch.float32:
        levels = area_pyramid(frames.numpy(), sizes)
    else:
        imgs = pixels.type(model_dtype)
        levels = (imresample(imgs, size) for size in sizes)
    boxes = [torch.zeros(0, 9, device=device, dtype=model_dtype)]
    image_inds = [torch.zeros(0, dtype=torch.long, device=device)]
    scale_picks = [torch.zeros(0, dtype=torch.long, device=device)]
    offset = 0
    for scale, level in zip(scales, levels):
        pnet_chunk = max(1, CPU_PNET_PIXELS // (level.shape[2] * level.shape[3])) if on_cpu else batch_size
        reg, probs = _run_chunked(pnet, (level - 127.5) * 0.0078125, pnet_chunk)
        boxes_scale, image_inds_scale = generateBoundingBox(reg, probs[:, 1], scale, threshold[0])
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
    boxes = rerec(torch.stack([qq1, qq2, qq3, qq4, boxes[:, 4]]).permute(1, 0))

    if crop_method == "table" or (crop_method == "auto" and not on_cpu):
        crop = SummedAreaTable(pixels, model_dtype).crops if len(boxes) else None
    else:

        def crop(*box_args):
            return crops_by_loop(pixels, *box_args, dtype=model_dtype)

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
        boxes = rerec(bbreg(boxes, mv))

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
        boxes = bbreg(boxes, mv)
        pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
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
