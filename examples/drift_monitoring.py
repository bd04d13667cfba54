"""Drift monitoring: when do new photos stop looking like the training photos?
==============================================================================

A model sees the world through its backbone's features, so that is where to watch
for drift. Here the reference is 60 face photos of the LFW subset that ships with
scikit-image; the "production" batches are the other 40 faces, unchanged (no drift:
the tests should stay quiet) or changed the way cameras and pipelines change images:
brighter, blurred or noisier, each at three strengths.

``DriftDetector`` compares each batch with the reference on the features of the
bundled EfficientNet-Lite0, with three two-sample tests (kernel MMD, a domain
classifier, per-feature Kolmogorov-Smirnov), and says whether the batch drifted
(p < 0.05). The photos are embedded once; each test then takes a fraction of a
second. The script prints the p-values and saves a plot; about 20 seconds on two CPU
cores, offline.

Run: ``python examples/drift_monitoring.py [--out drift_monitoring.png]``
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402
from skimage.data import lfw_subset  # noqa: E402

from sktransfer import ImageEmbedder  # noqa: E402
from sktransfer.monitoring import DriftDetector  # noqa: E402

SHIFTS = {
    "brighter": (lambda x, s, rng: x + s, [0.1, 0.2, 0.4]),
    "blurred": (lambda x, s, rng: gaussian_filter(x, sigma=(0, s, s)), [0.5, 1.0, 2.0]),
    "noisier": (lambda x, s, rng: x + rng.normal(0, s, x.shape), [0.02, 0.05, 0.1]),
}
METHODS = ["mmd", "classifier", "ks"]
FLOOR = 1e-4  # KS p-values go far below what the permutation tests can show (1/201)


def as_rgb(faces):
    """LFW's grey 25x25 floats in [0, 1] as RGB uint8 photos."""
    return np.repeat((np.clip(faces, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=-1)


def main():
    parser = argparse.ArgumentParser(description="Drift tests on shifted face photos.")
    parser.add_argument("--out", default="drift_monitoring.png", help="where to save the plot")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    faces = lfw_subset()[:100]  # the first 100 images are faces
    order = rng.permutation(len(faces))
    reference, new = faces[order[:60]], faces[order[60:]]

    batches = {("none", 0.0): new}
    for shift, (change, strengths) in SHIFTS.items():
        for strength in strengths:
            batches[(shift, strength)] = change(new, strength, rng)
    embedder = ImageEmbedder("efficientnet_lite0", image_size=160).fit(as_rgb(reference[:1]))
    features = {key: embedder.transform(as_rgb(x)) for key, x in batches.items()}
    reference_features = embedder.transform(as_rgb(reference))

    detectors = {
        m: DriftDetector(m, n_permutations=200, random_state=0).fit(reference_features) for m in METHODS
    }
    p_values = {key: {m: d.test(f).p_value for m, d in detectors.items()} for key, f in features.items()}

    print("p-values of 40 new faces against 60 reference faces (drift when p < 0.05)")
    print(f"{'change':>10} {'strength':>9} | " + " | ".join(f"{m:>10}" for m in METHODS))
    for (shift, strength), row in p_values.items():
        cells = [f"{row[m]:>9.3f}{'*' if row[m] < 0.05 else ' '}" for m in METHODS]
        print(f"{shift:>10} {strength:>9} | " + " | ".join(cells))

    figure, axes = plt.subplots(1, len(SHIFTS), figsize=(11, 3.8), sharey=True, layout="constrained")
    for ax, (shift, (_, strengths)) in zip(axes, SHIFTS.items()):
        for method in METHODS:
            values = [p_values[("none", 0.0)][method]] + [p_values[(shift, s)][method] for s in strengths]
            ax.plot([0, *strengths], np.maximum(values, FLOOR), marker="o", label=method)
        ax.axhline(0.05, color="grey", linestyle=":", label="alpha = 0.05")
        ax.set(title=shift, xlabel="strength of the change", yscale="log", ylim=(FLOOR / 2, 2))
    axes[0].set_ylabel(f"p-value (below {FLOOR:g} drawn at {FLOOR:g})")
    axes[0].legend()
    figure.savefig(args.out, dpi=120)
    print(f"plot saved to {args.out}")


if __name__ == "__main__":
    main()
