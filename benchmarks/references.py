"""Hand-written reference loops: what a careful PyTorch user would write without sktransfer.

Each takes the same model, weights, inputs, batch size and precision as the
sktransfer call it is compared with, and does the same work (decoding and
preprocessing included).
"""

import contextlib

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
    """Decode, resize, crop, normalise per image; forward; average-pool the feature map."""
    loader = torch.utils.data.DataLoader(
        _Images(items, eval_transform(cfg)),
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    model = model.eval().to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    out = []
    with torch.inference_mode(), _autocast(device, dtype):
        for x in loader:
            x = x.to(device, non_blocking=True)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            features = model(x).float()
            pooled = features.mean(dim=(2, 3)) if features.ndim == 4 else features[:, 0]  # CNN: avg; ViT: CLS
            out.append(pooled.cpu())
    return torch.cat(out).numpy()


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
    model, head = model.to(device).eval(), head.to(device).train()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW([*trainable, *head.parameters()], lr=lr, weight_decay=0.01)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    for indices, y in loader:
        x = torch.stack([dataset[int(i)] for i in indices]).to(device)
        with _autocast(device, dtype):
            logits = head(model(x).mean(dim=(2, 3)))
        loss = criterion(logits.float(), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item()
