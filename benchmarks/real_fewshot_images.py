"""Few-shot images: accuracy against labelled images a class (1, 2, 5, 10, 20), on
EuroSAT and chest X-rays, for the frozen probe, fine-tuning and ``freeze="auto"``.

    python benchmarks/real_fewshot_images.py [--per-class 1 2 5 10 20] [--draws 3]
                                             [--tuned-draws 2] [--auto-draws 1]
                                             [--only eurosat chest]

Data (``../shared/data``):
- EuroSAT RGB: 50 images a class held out for testing (500, ``default_rng(0)``); the
  labelled images are drawn from the other 50 a class;
- chest X-rays: split 50/50 by patient (the first fold of ``StratifiedGroupKFold(2)``,
  seed 0), so no patient is on both sides; the labelled images are drawn from the
  training patients, the other half (200 images) is the test set.

Draw k takes ``per_class`` images of each class with ``default_rng(k)``, the same for
every method. Methods, all on the bundled EfficientNet-Lite0:
- probe: ``ImageEmbedder`` features (computed once for all images) + ``StandardScaler``
  + ``LogisticRegression``;
- fine-tune: ``ImageClassifier(freeze="last:3")``, the fixed default;
- auto: ``ImageClassifier(freeze="auto")``, from 2 images a class (with one, nothing is
  left to validate its candidates on: it says so and trains the fixed default, which is
  the fine-tune row).

The probe runs ``--draws`` draws, fine-tuning ``--tuned-draws`` and auto (which costs
about 2.5 fine-tunes) ``--auto-draws``. Writes
``benchmarks/results/real-fewshot-images-<host>.{json,md}`` and the plot
``real-fewshot-images-<host>.png``; about 30 minutes on 2 CPU cores.
"""

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import DATA, auto_choice, chest_xray_split, machine, merge_results, results_path  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktransfer import ImageClassifier, ImageEmbedder, load_image_folder  # noqa: E402

METHODS = ["probe", "fine-tune", "auto"]


def eurosat():
    X, y = load_image_folder(DATA / "eurosat_rgb")
    rng = np.random.default_rng(0)
    test = np.concatenate([rng.choice(np.flatnonzero(y == c), 50, replace=False) for c in np.unique(y)])
    pool = np.setdiff1d(np.arange(len(X)), test)
    return X, y, pool, np.sort(test)


def chest():
    X, y, _, pool, test = chest_xray_split(seed=0)
    return X, y, pool, test


DATASETS = {
    "eurosat": ("EuroSAT (10 classes, test 500)", eurosat),
    "chest": ("chest X-ray (test 200)", chest),
}


def draw(y, pool, per_class, seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(pool[y[pool] == c], per_class, replace=False) for c in np.unique(y)])


def run(name, sizes, draws, tuned_draws, auto_draws, methods):
    label, load = DATASETS[name]
    X, y, pool, test = load()
    # The probe's features, computed once for all images (outside its timing).
    features = ImageEmbedder("efficientnet_lite0").fit_transform(X) if "probe" in methods else None
    rows = []
    for per_class in sizes:
        for method in methods:
            n_draws = {"probe": draws, "fine-tune": tuned_draws, "auto": auto_draws}[method]
            if method == "auto" and per_class < 2:
                continue
            for seed in range(n_draws):
                train = draw(y, pool, per_class, seed)
                start = time.perf_counter()
                if method == "probe":
                    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
                    score = model.fit(features[train], y[train]).score(features[test], y[test])
                else:
                    freeze = "auto" if method == "auto" else "last:3"
                    model = ImageClassifier("efficientnet_lite0", freeze=freeze, random_state=seed)
                    score = model.fit(X[train], y[train]).score(X[test], y[test])
                rows.append(
                    {
                        "data": label,
                        "method": method,
                        "per_class": per_class,
                        "seed": seed,
                        "accuracy": float(score),
                        "seconds": round(time.perf_counter() - start, 1),
                        "chosen": auto_choice(model) if method == "auto" else None,
                    }
                )
                print(rows[-1], flush=True)
        write(rows)  # after each size: a long run keeps what it measured
    return rows


def write(rows):
    rows = merge_results(
        "real-fewshot-images", rows, key=lambda r: (r["data"], r["method"], r["per_class"], r["seed"])
    )
    frame = pd.DataFrame(rows)
    table = (
        frame.groupby(["data", "method", "per_class"], sort=False)
        .agg(
            accuracy=("accuracy", "mean"),
            std=("accuracy", "std"),
            draws=("seed", "count"),
            seconds=("seconds", "mean"),
        )
        .reset_index()
        .sort_values(["data", "per_class", "method"])
    )
    chosen = (
        frame.dropna(subset=["chosen"]).groupby(["data", "per_class"])["chosen"].agg(lambda c: ", ".join(c))
    )
    lines = [
        "# Few-shot images: accuracy against labelled images a class",
        "",
        f"Machine: {machine()}. Written by `benchmarks/real_fewshot_images.py`: the same draws for",
        "every method (draw k: `default_rng(k)`); `seconds`: fit + predicting the test set (the",
        "probe's features are computed once for all images, outside the timing).",
        "",
        table.round(3).to_markdown(index=False),
        "",
        "What `freeze='auto'` chose, draw by draw:",
        "",
        chosen.reset_index().to_markdown(index=False),
        "",
    ]
    results_path("real-fewshot-images", "md").write_text("\n".join(lines))
    plot(table)


def plot(table):
    datasets = list(dict.fromkeys(table["data"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, data in zip(axes[0], datasets):
        for method in METHODS:
            part = table[(table["data"] == data) & (table["method"] == method)]
            if len(part):
                ax.errorbar(
                    part["per_class"],
                    part["accuracy"],
                    yerr=part["std"].fillna(0),
                    marker="o",
                    label=method,
                    capsize=3,
                )
        ax.set_xscale("log")
        ax.set_xticks([1, 2, 5, 10, 20], ["1", "2", "5", "10", "20"])
        ax.set_xlabel("labelled images a class")
        ax.set_ylabel("test accuracy")
        ax.set_title(data)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(results_path("real-fewshot-images", "png"), dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", nargs="+", type=int, default=[1, 2, 5, 10, 20])
    parser.add_argument("--draws", type=int, default=3, help="draws of the probe")
    parser.add_argument("--tuned-draws", type=int, default=2, help="draws of fine-tune")
    parser.add_argument("--auto-draws", type=int, default=1, help="draws of auto (2.5 fine-tunes each)")
    parser.add_argument("--only", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    args = parser.parse_args()
    for name in args.only:
        run(name, args.per_class, args.draws, args.tuned_draws, args.auto_draws, args.methods)


if __name__ == "__main__":
    main()
