"""Explanations: does the model look where the evidence is?
=============================================================

A classifier that tells brick from grass is trained on 64x64 patches of two texture
photographs that ship with scikit-image: the frozen features of the bundled
EfficientNet-Lite0, standardised, and a logistic regression. It is then shown new
128x128 pictures that are half brick and half grass, side by side, and asked why it
sees brick: ``sktransfer.inspection.attribute`` with Grad-CAM gives one heat map per
picture, at the picture's own size, through the frozen backbone into the linear
model.

If the explanation is faithful, the heat on each picture sits on its brick half. The
script prints, for each picture, the predicted probability of brick and the share of
the positive attribution that falls on the brick half, and saves the maps laid over
the pictures. About 20 seconds on two CPU cores, offline (needs the ``[explain]``
extra for captum).

Run: ``python examples/explain_textures.py [--out explain_textures.png]``
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from skimage import data  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktransfer import ImageEmbedder  # noqa: E402
from sktransfer.inspection import attribute, plot_image_attribution  # noqa: E402

PATCH = 64


def patches(photo, rows):
    """Non-overlapping PATCH x PATCH squares from the given rows of squares of ``photo``."""
    return [
        photo[top : top + PATCH, left : left + PATCH]
        for top in range(rows.start * PATCH, rows.stop * PATCH, PATCH)
        for left in range(0, photo.shape[1] - PATCH + 1, PATCH)
    ]


def main():
    parser = argparse.ArgumentParser(description="Grad-CAM on half-brick, half-grass pictures.")
    parser.add_argument("--out", default="explain_textures.png", help="where to save the plot")
    args = parser.parse_args()
    brick, grass = data.brick(), data.grass()

    # Training patches from the top half of each photograph, test pictures from the bottom.
    X = np.stack(patches(brick, range(0, 4)) + patches(grass, range(0, 4)))
    y = np.array(["brick"] * (len(X) // 2) + ["grass"] * (len(X) // 2))
    model = make_pipeline(
        ImageEmbedder("efficientnet_lite0"), StandardScaler(), LogisticRegression(max_iter=1000)
    )
    model.fit(X, y)

    pictures, brick_left = [], []
    for i in range(6):
        top, left = 256 + 64 * (i // 3), 128 * (i % 3)
        b = brick[top : top + 2 * PATCH, left : left + PATCH]
        g = grass[top : top + 2 * PATCH, left : left + PATCH]
        pictures.append(np.hstack([b, g] if i % 2 == 0 else [g, b]))
        brick_left.append(i % 2 == 0)

    maps = attribute(model, pictures, method="gradcam", target="brick")
    proba = model.predict_proba(np.stack(pictures))[:, list(model.classes_).index("brick")]

    print("Grad-CAM for 'brick' on six pictures, half brick and half grass")
    print(f"{'picture':>7} | {'brick on the':>12} | {'P(brick)':>8} | {'attribution on the brick half':>29}")
    shares = []
    for i, (heat, left) in enumerate(zip(maps, brick_left)):
        positive = np.clip(heat, 0, None)
        half = positive[:, :PATCH] if left else positive[:, PATCH:]
        shares.append(half.sum() / max(positive.sum(), 1e-12))
        print(f"{i:>7} | {'left' if left else 'right':>12} | {proba[i]:>8.2f} | {shares[-1]:>29.2f}")
    print(
        f"mean share on the brick half: {np.mean(shares):.2f} (0.50 would be a map that ignores the content)"
    )

    figure, axes = plt.subplots(1, len(pictures), figsize=(13, 2.8), layout="constrained")
    for ax, picture, heat, left in zip(axes, pictures, maps, brick_left):
        plot_image_attribution(np.repeat(picture[..., None], 3, axis=-1), heat, ax=ax)
        ax.set_title(f"brick on the {'left' if left else 'right'}")
        ax.axis("off")
    figure.savefig(args.out, dpi=120)
    print(f"plot saved to {args.out}")


if __name__ == "__main__":
    main()
