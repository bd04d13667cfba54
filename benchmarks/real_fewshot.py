"""Few- and zero-shot text classification on SST-2, side by side, over the same draws.

    python benchmarks/real_fewshot.py [--backbones all-MiniLM-L6-v2 all-mpnet-base-v2]

Zero-shot from the class names only ({0: "negative", 1: "positive"}): without any
texts, and transductively (``fit`` on the unlabelled dev texts, or on 2,000 unlabelled
training phrases); a hand-written description for comparison; and the frozen probe
from 8 labelled phrases a class (10 draws from 8,000 training phrases) as the
few-shot baseline. Writes ``benchmarks/results/real-fewshot-<host>.{json,md}``.
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
from _common import DATA, RESULTS, machine
from sklearn.linear_model import LogisticRegression

from sktransfer import TextEmbedder, ZeroShotTextClassifier

NAMES = {0: "negative", 1: "positive"}


def read(name):
    return pd.read_csv(DATA / "sst2" / f"{name}.tsv", sep="\t", quoting=3, keep_default_na=False)


def draws(labels, per_class, n_draws=10):
    """The labelled rows of each draw: ``per_class`` of each class, ``default_rng(draw)``."""
    for draw in range(n_draws):
        rng = np.random.default_rng(draw)
        yield np.concatenate(
            [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in (0, 1)]
        )


def run(backbone, cache):
    train, dev = read("train"), read("dev")
    pool = train.sample(n=8000, random_state=0)
    unlabelled = train.drop(pool.index).sample(n=2000, random_state=1)["sentence"]
    X_dev, y_dev = dev["sentence"], dev["label"].to_numpy()
    rows = []

    def add(method, scores, seconds, **extra):
        scores = np.atleast_1d(scores)
        rows.append(
            {
                "backbone": backbone,
                "method": method,
                "accuracy": float(scores.mean()),
                "std": float(scores.std()),
                "draws": len(scores),
                "fit_seconds": seconds,
                **extra,
            }
        )
        print(rows[-1], flush=True)

    def zero_shot(method, X_fit, **params):
        start = time.perf_counter()
        model = ZeroShotTextClassifier(backbone, NAMES, cache=cache, **params).fit(X_fit)
        add(method, model.score(X_dev, y_dev), time.perf_counter() - start)

    zero_shot("zero-shot, class names, no texts", [], transductive=False)
    zero_shot("zero-shot, class names, fit on the dev texts (transductive)", X_dev)
    zero_shot("zero-shot, class names, fit on 2,000 other unlabelled phrases", unlabelled)
    description = {0: "a negative review", 1: "a positive review"}
    start = time.perf_counter()
    model = ZeroShotTextClassifier(
        backbone, description, templates=None, transductive=False, cache=cache
    ).fit([])
    add(
        "zero-shot, 'a negative/positive review', no texts",
        model.score(X_dev, y_dev),
        time.perf_counter() - start,
    )

    embedder = TextEmbedder(backbone, cache=cache).fit(["a"])
    F_pool, F_dev = embedder.transform(pool["sentence"]), embedder.transform(X_dev)
    pool_labels = pool["label"].to_numpy()
    for per_class in (8, 64):
        scores, seconds = [], []
        for idx in draws(pool_labels, per_class):
            start = time.perf_counter()
            probe = LogisticRegression(max_iter=5000).fit(F_pool[idx], pool_labels[idx])
            seconds.append(time.perf_counter() - start)
            scores.append(probe.score(F_dev, y_dev))
        add(f"frozen probe, {per_class} a class", scores, float(np.mean(seconds)))
    return rows


def write(rows):
    host = machine()["host"]
    (RESULTS / f"real-fewshot-{host}.json").write_text(
        json.dumps({"machine": machine(), "rows": rows}, indent=1)
    )
    frame = pd.DataFrame(rows)
    lines = [
        "# Few- and zero-shot text classification, SST-2 dev (872 phrases)",
        "",
        f"Machine: {machine()}. Written by `benchmarks/real_fewshot.py`. Draws: 10 per",
        "setting, `default_rng(draw)` over 8,000 training phrases, the same for every method.",
        "",
        frame.round(3).to_markdown(index=False),
        "",
    ]
    (RESULTS / f"real-fewshot-{host}.md").write_text("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["all-MiniLM-L6-v2", "all-mpnet-base-v2"])
    parser.add_argument("--cache", default=None, help="feature cache folder")
    args = parser.parse_args()
    rows = []
    for backbone in args.backbones:
        rows += run(backbone, args.cache)
    write(rows)


if __name__ == "__main__":
    main()
