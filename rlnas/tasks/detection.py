"""Object detection with an anchor-free FCOS-style head on the searched backbone.

Tian et al., 2019, "FCOS: Fully Convolutional One-Stage Object Detection":
every location of one feature map (the backbone's highest resolution, with
deeper stages fused top-down) classifies, regresses the distances to the four
sides of its box and predicts centre-ness. Losses come from torchvision.ops
(sigmoid focal loss, Lin et al. 2017; generalized IoU, Rezatofighi et al.
2019); decoding uses ``torchvision.ops.batched_nms``; mAP comes from
torchmetrics' ``MeanAveragePrecision``, with the COCO evaluation of
faster-coco-eval by default (the same numbers as pycocotools' COCOeval, about
five times faster on the 64-image minibatches every controller sample is
scored on) or pycocotools itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlnas.data.base import DataSplits
from rlnas.data.detection import load_detection
from rlnas.spaces.base import check_supernet_fits
from rlnas.tasks.base import Task

# faster-coco-eval logs its whole summary table at INFO on every evaluation.
logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)


class FCOSHead(nn.Module):
    """Top-down fusion of the stage features, a shared tower and three predictors.

    Output: (B, K + 5, H, W) = class logits (K), ltrb distances in pixels (4,
    positive) and centre-ness logit (1), at the first stage's resolution.
    """

    def __init__(self, feature_channels: Sequence[int], num_classes: int, channels: int = 64) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in feature_channels)
        tower: list[nn.Module] = []
        for _ in range(2):
            tower += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.GroupNorm(8, channels), nn.ReLU()]
        self.tower = nn.Sequential(*tower)
        self.cls = nn.Conv2d(channels, num_classes, 3, padding=1)
        self.reg = nn.Conv2d(channels, 4, 3, padding=1)
        self.ctr = nn.Conv2d(channels, 1, 3, padding=1)
        # FCOS/RetinaNet prior: start with foreground probability 0.01.
        nn.init.constant_(self.cls.bias, -math.log((1 - 0.01) / 0.01))
        self.log_scale = nn.Parameter(torch.zeros(1))

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = self.lateral[-1](features[-1])
        for i in range(len(features) - 2, -1, -1):
            x = self.lateral[i](features[i]) + F.interpolate(x, size=features[i].shape[-2:], mode="nearest")
        t = self.tower(x)
        # Distances in strides as exp(x + s) (FCOS, sec. 3.1), clamped for stability;
        # the task multiplies by the stride, which depends on the input size.
        ltrb = torch.exp((self.reg(t) + self.log_scale).clamp(max=8.0))
        return torch.cat([self.cls(t), ltrb, self.ctr(t)], dim=1)


class DetectionTask(Task):
    """Object detection on embedded digit canvases or users' COCO data.

    Args:
        reward_metric: ``map`` (mAP@[.5:.95], default: mAP@0.5 saturates on easy
            data and stops telling architectures apart) or ``map50``.
        data: Arguments of :func:`rlnas.data.detection.load_detection`.
        head_channels: Width of the FCOS head.
        center_radius: FCOS centre sampling radius, in strides.
        score_threshold: Minimum score of a kept detection.
        nms_iou: IoU threshold of the per-class NMS.
        max_detections: Detections kept per image.
        map_backend: COCO evaluation behind torchmetrics' ``MeanAveragePrecision``:
            ``faster_coco_eval`` (default) or ``pycocotools``; both give the same values.
    """

    name = "detection"
    data_loader = staticmethod(load_detection)
    metric_names = ("map", "map50")
    metric_max = 1.0  # fractions
    map_backends = ("faster_coco_eval", "pycocotools")

    def __init__(
        self,
        reward_metric: str = "map",
        data: dict | None = None,
        head_channels: int = 64,
        center_radius: float = 1.5,
        score_threshold: float = 0.05,
        nms_iou: float = 0.5,
        max_detections: int = 20,
        map_backend: str = "faster_coco_eval",
    ) -> None:
        super().__init__(reward_metric, data)
        if map_backend not in self.map_backends:
            raise ValueError(f"task.map_backend={map_backend!r} is unknown; allowed: {list(self.map_backends)}")
        self.map_backend = map_backend
        if head_channels < 1:
            raise ValueError(f"task.head_channels must be >= 1, got {head_channels}")
        if head_channels % 8:  # torch named no key: "num_channels (12) must be divisible by num_groups (8)"
            raise ValueError(
                f"task.head_channels must be a multiple of 8 (the head's GroupNorm has 8 groups), got {head_channels}"
            )
        # The tower's two 3x3 convolutions dominate the head's weights.
        check_supernet_fits(18 * head_channels**2, f"task.head_channels={head_channels}", "the head")
        self.head_channels = int(head_channels)
        if not center_radius > 0:  # FCOS centre sampling: no location would be a positive
            raise ValueError(f"task.center_radius must be > 0 (in strides), got {center_radius}")
        self.center_radius = float(center_radius)
        if not 0 <= float(score_threshold) < 1:  # scores are probabilities: 1 or more keeps no box at all
            raise ValueError(f"task.score_threshold must be in [0, 1), got {score_threshold}")
        self.score_threshold = float(score_threshold)
        if not 0 <= nms_iou <= 1:
            raise ValueError(f"task.nms_iou must be in [0, 1] (an IoU), got {nms_iou}")
        self.nms_iou = float(nms_iou)
        if max_detections < 1:  # no detection kept: every mAP would be 0
            raise ValueError(f"task.max_detections must be >= 1, got {max_detections}")
        self.max_detections = int(max_detections)
        self.num_classes = 0
        self.image_size = int(self.data_kwargs.get("canvas_size", 64))

    def load_data(self, seed: int) -> DataSplits:
        data = load_detection(seed=seed, **self.data_kwargs)
        self.num_classes = data.num_classes
        self.image_size = data.train.x.shape[-1]
        return data

    def build_head(self, feature_channels: Sequence[int], data: DataSplits) -> nn.Module:
        return FCOSHead(feature_channels, data.num_classes, self.head_channels)

    # -- targets and loss -------------------------------------------------------
    def _locations(self, h: int, w: int, device: torch.device) -> tuple[Tensor, float]:
        stride = self.image_size / w
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        return torch.stack([(xs.flatten() + 0.5) * stride, (ys.flatten() + 0.5) * stride], dim=1), stride  # (HW, 2)

    def _split(self, outputs: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, float]:
        B, _, H, W = outputs.shape
        K = outputs.shape[1] - 5
        flat = outputs.flatten(2).transpose(1, 2)  # (B, HW, K + 5)
        points, stride = self._locations(H, W, outputs.device)
        return flat[..., :K], flat[..., K : K + 4] * stride, flat[..., K + 4], points, stride

    @staticmethod
    def _boxes(points: Tensor, ltrb: Tensor) -> Tensor:
        return torch.cat([points - ltrb[..., :2], points + ltrb[..., 2:]], dim=-1)

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        # Imported here, as in decode: torchvision takes seconds to import, which --help or a config error need not pay.
        from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

        cls, ltrb, ctr, points, stride = self._split(outputs)
        B, HW, K = cls.shape
        labels, gt = targets[..., 0].long(), targets[..., 1:]  # (B, M), (B, M, 4)
        valid = labels >= 0
        px, py = points[None, :, None, 0], points[None, :, None, 1]  # (1, HW, 1)
        x1, y1, x2, y2 = (gt[:, None, :, i] for i in range(4))  # (B, 1, M)
        dist = torch.stack([px - x1, py - y1, x2 - px, y2 - py], dim=-1)  # (B, HW, M, 4)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        radius = self.center_radius * stride
        near = ((px - cx).abs() < radius) & ((py - cy).abs() < radius)
        ok = (dist.min(dim=-1).values > 0) & near & valid[:, None, :]
        area = ((x2 - x1) * (y2 - y1)).expand(B, HW, -1)
        # Each location regresses the smallest box it falls in (FCOS, sec. 3.1).
        area = torch.where(ok, area, torch.full_like(area, float("inf")))
        best_area, assigned = area.min(dim=-1)  # (B, HW)
        pos = torch.isfinite(best_area)
        num_pos = pos.sum().clamp_min(1).float()

        cls_target = torch.zeros_like(cls)
        assigned_labels = labels.gather(1, assigned)  # (B, HW)
        cls_target[pos] = F.one_hot(assigned_labels[pos], K).to(cls.dtype)
        loss_cls = sigmoid_focal_loss(cls, cls_target, alpha=0.25, gamma=2.0, reduction="sum") / num_pos

        target_ltrb = dist.gather(2, assigned[..., None, None].expand(-1, -1, 1, 4)).squeeze(2)[pos]  # (P, 4)
        if target_ltrb.numel() == 0:
            return loss_cls + 0.0 * (ltrb.sum() + ctr.sum())
        lr, tb = target_ltrb[:, [0, 2]], target_ltrb[:, [1, 3]]
        centerness = torch.sqrt((lr.min(1).values / lr.max(1).values) * (tb.min(1).values / tb.max(1).values))
        p = points[None].expand(B, -1, -1)[pos]
        loss_box = generalized_box_iou_loss(self._boxes(p, ltrb[pos]), self._boxes(p, target_ltrb), reduction="none")
        loss_box = (loss_box * centerness).sum() / centerness.sum().clamp_min(1e-6)
        loss_ctr = F.binary_cross_entropy_with_logits(ctr[pos], centerness, reduction="sum") / num_pos
        return loss_cls + loss_box + loss_ctr

    # -- decoding and metrics ---------------------------------------------------
    @torch.no_grad()
    def decode(self, outputs: Tensor) -> list[dict[str, Tensor]]:
        """Boxes, scores and labels per image after score threshold and class-wise NMS."""
        from torchvision.ops import batched_nms  # here: torchvision takes seconds to import

        cls, ltrb, ctr, points, _ = self._split(outputs.float())
        scores = torch.sqrt(cls.sigmoid() * ctr.sigmoid()[..., None])  # (B, HW, K), FCOS test-time score
        boxes = self._boxes(points[None], ltrb).clamp(0, self.image_size)
        K = cls.shape[-1]
        results = []
        for b in range(len(outputs)):
            flat = scores[b].flatten()
            top = flat.topk(min(100, flat.numel()))
            keep = top.values > self.score_threshold
            idx, sc = top.indices[keep], top.values[keep]
            loc, lab = idx // K, idx % K
            bx = boxes[b, loc]
            kept = batched_nms(bx, sc, lab, self.nms_iou)[: self.max_detections]
            results.append({"boxes": bx[kept], "scores": sc[kept], "labels": lab[kept]})
        return results

    @staticmethod
    def ground_truth(targets: Tensor) -> list[dict[str, Tensor]]:
        out = []
        for t in targets:
            keep = t[:, 0] >= 0
            out.append({"boxes": t[keep, 1:], "labels": t[keep, 0].long()})
        return out

    def batch_metrics(self, outputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        from torchmetrics.detection import MeanAveragePrecision

        metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend=self.map_backend)
        preds = [{k: v.cpu() for k, v in p.items()} for p in self.decode(outputs)]
        gts = [{k: v.cpu() for k, v in g.items()} for g in self.ground_truth(targets)]
        metric.update(preds, gts)
        result = metric.compute()
        # COCOeval reports -1 when no ground truth exists; count that as 0.
        return {"map": result["map"].clamp_min(0), "map50": result["map_50"].clamp_min(0)}

    def preview(self, images: Tensor, outputs: Tensor, targets: Tensor) -> Tensor:
        """Images (N, 3, H, W) uint8 with predicted boxes (red) and ground truth (green)."""
        from torchvision.utils import draw_bounding_boxes

        drawn = []
        x = images.float()
        x = (x - x.amin(dim=(1, 2, 3), keepdim=True)) / (
            x.amax(dim=(1, 2, 3), keepdim=True) - x.amin(dim=(1, 2, 3), keepdim=True) + 1e-6
        )
        for img, pred, gt in zip(x, self.decode(outputs), self.ground_truth(targets)):
            rgb = (
                (img.expand(3, -1, -1) * 255).to(torch.uint8).cpu()
                if img.shape[0] == 1
                else (img * 255).to(torch.uint8).cpu()
            )
            rgb = draw_bounding_boxes(rgb, gt["boxes"].cpu(), colors="green")
            keep = pred["scores"] > 0.3
            rgb = draw_bounding_boxes(
                rgb, pred["boxes"][keep].cpu(), [str(int(v)) for v in pred["labels"][keep]], colors="red"
            )
            drawn.append(rgb)
        return torch.stack(drawn)
