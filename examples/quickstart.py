"""Quickstart: what a pretrained backbone buys you when labels are scarce
======================================================================

Two small image data sets that ship inside scikit-image (nothing is downloaded):

* textures: 64x64 patches cut from the brick, grass and gravel photographs
  (3 classes, 64 patches each);
* faces: the LFW subset, 25x25 face and non-face crops (2 classes, 100 each).

For each data set we draw a few labelled images per class (1, 2, 5, 10, 20),
train a logistic regression on them and test it on all the other images, for
several random draws. Two inputs compete for the same classifier:

* pixels: the images resized to 32x32, flattened and standardised;
* features: the 1280-d output of ``ImageEmbedder("efficientnet_lite0")``, an
  ImageNet-pretrained network that ships with sktransfer's ``[bundled]`` extra.

The network has never seen these images, yet with one or two labelled examples
per class its features already separate the classes almost perfectly, while
the same classifier on pixels needs many more labels and still falls short. That is
transfer learning: what a network learned on a large data set (here ImageNet)
reused on a small one. Every image is embedded once; each draw only indexes
the feature matrix, so the script takes under half a minute on two CPU cores.

Run: ``python examples/quickstart.py [--quick] [--out quickstart.png]``
"""

import argparse
import time

import matplotlib
import numpy as np
from skimage import data
from skimage.transform import resize
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import ImageEmbedder

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS_PER_CLASS = (1, 2, 5, 10, 20)


def load_textures(patch=64):
    """Non-overlapping greyscale patches (uint8) of three texture photographs."""
    images, labels = [], []
    for name in ("brick", "grass", "gravel"):
        photo = getattr(data, name)()
        for top in range(0, photo.shape[0] - patch + 1, patch):
            for left in range(0, photo.shape[1] - patch + 1, patch):
                images.append(photo[top : top + patch, left : left + patch])
                labels.append(name)
    return np.stack(images), np.array(labels)


def load_faces():
    """The LFW subset: 100 faces then 100 non-faces, 25x25, as uint8."""
    images = (data.lfw_subset() * 255).round().astype(np.uint8)
    return images, np.array(["face"] * 100 + ["non-face"] * 100)


def pixels(images, size=32):
    """The raw-pixel baseline's input: every image resized to size x size, flattened."""
    return np.stack([resize(image, (size, size), anti_aliasing=True).ravel() for image in images])


def draw(labels, k, rng):
    """Indices of ``k`` random training images per class, and of all the others."""
    train = np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c in np.unique(labels)]
    )
    return train, np.setdiff1d(np.arange(len(labels)), train)


def compare(inputs, labels, n_draws):
    """Mean and std test accuracy over ``n_draws`` draws, per method and labels per class."""
    models = {
        "pixels": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "features": lambda: LogisticRegression(max_iter=1000),
    }
    scores = {method: {} for method in models}
    for k in LABELS_PER_CLASS:
        for method, make_model in models.items():
            accuracies = []
            for seed in range(n_draws):  # same seeds, hence same training images, for both methods
                train, test = draw(labels, k, np.random.default_rng(seed))
                X = inputs[method]
                model = make_model().fit(X[train], labels[train])
                accuracies.append(model.score(X[test], labels[test]))
            scores[method][k] = (np.mean(accuracies), np.std(accuracies))
    return scores


def print_table(results, n_draws):
    print(f"\nTest accuracy, mean (std) over {n_draws} random draws of the labelled images")
    columns = [(name, method) for name in results for method in ("pixels", "features")]
    print(f"{'labels per class':>16} | " + " | ".join(f"{f'{n}: {m}':>19}" for n, m in columns))
    for k in LABELS_PER_CLASS:
        cells = [f"{results[n][m][k][0]:.2f} ({results[n][m][k][1]:.2f})" for n, m in columns]
        print(f"{k:>16} | " + " | ".join(f"{cell:>19}" for cell in cells))


def plot(results, n_classes, path):
    figure, axes = plt.subplots(1, len(results), figsize=(10, 4.5), sharey=True, layout="constrained")
    for ax, (name, scores) in zip(axes, results.items()):
        for method, label in [("pixels", "raw pixels"), ("features", "efficientnet_lite0 features")]:
            mean, std = np.array([scores[method][k] for k in LABELS_PER_CLASS]).T
            ax.plot(LABELS_PER_CLASS, mean, marker="o", label=label)
            ax.fill_between(LABELS_PER_CLASS, mean - std, mean + std, alpha=0.2)
        ax.axhline(1 / n_classes[name], color="grey", linestyle=":", label="chance")
        ax.set(title=name, xscale="log", xlabel="labelled images per class", xticks=LABELS_PER_CLASS)
        ax.set_xticklabels(LABELS_PER_CLASS)
    axes[0].set_ylabel("test accuracy")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
    figure.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(
        description="What a pretrained backbone buys you when labels are scarce."
    )
    parser.add_argument("--out", default="quickstart.png", help="where to save the plot")
    parser.add_argument("--quick", action="store_true", help="3 random draws instead of 10")
    args = parser.parse_args()
    n_draws = 3 if args.quick else 10

    start = time.perf_counter()
    embedder = ImageEmbedder("efficientnet_lite0")  # pretrained on ImageNet, frozen
    results, n_classes = {}, {}
    for name, (images, labels) in {"textures": load_textures(), "faces": load_faces()}.items():
        features = embedder.fit_transform(images)  # every image embedded once: (n_images, 1280)
        results[name] = compare({"pixels": pixels(images), "features": features}, labels, n_draws)
        n_classes[name] = len(np.unique(labels))
        classes = ", ".join(np.unique(labels))
        print(f"{name}: {len(images)} images ({classes}), {time.perf_counter() - start:.0f} s so far")

    print_table(results, n_draws)
    plot(results, n_classes, args.out)
    print(f"\nTotal time {time.perf_counter() - start:.0f} s. Plot saved to {args.out}")


if __name__ == "__main__":
    main()
