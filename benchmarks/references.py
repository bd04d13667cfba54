"""Hand-written reference loops: what a careful PyTorch user would write without sktransfer.

Each takes the same model, weights, inputs, batch size and precision as the
sktransfer call it is compared with, and does the same work (decoding and
preprocessing included).
"""

import contextlib

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

INTERPOLATION = {"bilinear": v2.InterpolationMode.BILINEAR, "bicubic": v2.InterpolationMode.BICUBIC}


def _autocast(device, dtype):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


class _Images(torch.utils.data.Dataset):
    def __init__(self, items, transform):
        self.items, self.transform = items, transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        item = self.items[i]
        image = Image.open(item).convert("RGB") if isinstance(item, str) else Image.fromarray(item)
        return self.transform(image)


def eval_transform(cfg):
    return v2.Compose(
        [
            v2.Resize(cfg.resize_size, interpolation=INTERPOLATION[cfg.interpolation]),
            v2.CenterCrop(cfg.input_size),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(cfg.mean, cfg.std),
        ]
    )


def embed_images(model, cfg, items, *, batch_size, device, dtype=None, num_workers=0):
    """Decode, resize, crop, normalise; forward in channels-last; average-pool the feature map.

    Same-sized uint8 arrays are preprocessed a whole batch at a time on tensors
    (``from_numpy(...).permute(0, 3, 1, 2)``, antialiased resize), the fastest loop a
    careful user would write for them; files go through a DataLoader image by image.
    """
    model = model.eval().to(device, memory_format=torch.channels_last)
    out = []
    with torch.inference_mode(), _autocast(device, dtype):
        for x in _eval_batches(cfg, items, batch_size, device, num_workers):
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            features = model(x).float()
            pooled = features.mean(dim=(2, 3)) if features.ndim == 4 else features[:, 0]  # CNN: avg; ViT: CLS
            out.append(pooled.cpu())
    return torch.cat(out).numpy()


def _eval_batches(cfg, items, batch_size, device, num_workers):
    if not isinstance(items[0], str):
        arrays = torch.from_numpy(np.stack(items))
        resize = v2.Resize(cfg.resize_size, interpolation=INTERPOLATION[cfg.interpolation], antialias=True)
        crop = v2.CenterCrop(cfg.input_size)
        mean = torch.tensor(cfg.mean).view(1, 3, 1, 1) * 255
        std = torch.tensor(cfg.std).view(1, 3, 1, 1) * 255
        for start in range(0, len(arrays), batch_size):
            batch = arrays[start : start + batch_size].permute(0, 3, 1, 2)  # channels-last strides
            yield (crop(resize(batch)).float() - mean) / std
        return
    yield from torch.utils.data.DataLoader(
        _Images(items, eval_transform(cfg)),
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )


def train_one_epoch(model, head, cfg, items, targets, *, trainable, batch_size, device, dtype=None, lr=1e-3):
    """One epoch of a plain fine-tuning loop: resize, RandomResizedCrop(0.8-1) + flip, AdamW,
    label smoothing, BatchNorm in eval mode, only ``trainable`` parameters updated."""
    transform = v2.Compose(
        [
            v2.Resize(cfg.resize_size, interpolation=INTERPOLATION[cfg.interpolation]),
            v2.RandomResizedCrop(
                cfg.input_size, scale=(0.8, 1.0), interpolation=INTERPOLATION[cfg.interpolation]
            ),
            v2.RandomHorizontalFlip(),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(cfg.mean, cfg.std),
        ]
    )
    dataset = _Images(items, transform)
    loader = torch.utils.data.DataLoader(
        list(zip(range(len(items)), targets)), batch_size=batch_size, shuffle=True
    )
    model, head = model.to(device, memory_format=torch.channels_last).eval(), head.to(device).train()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW([*trainable, *head.parameters()], lr=lr, weight_decay=0.01)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    for indices, y in loader:
        x = torch.stack([dataset[int(i)] for i in indices]).to(device)
        x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, dtype):
            logits = head(model(x).mean(dim=(2, 3)))
        loss = criterion(logits.float(), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item()
