"""Default fine-tuning recipes against the linear probe on the shared real data, over seeds.

    python benchmarks/real_data.py [--seeds 0 1 2] [--only images|text]

Writes ``benchmarks/results/real-data-<host>.{json,md}``. Needs the shared data
folder (``SKTRANSFER_DATA`` or ``../shared/data``); about 35 minutes on 2 CPU cores.
With ``--only``, the other data set's earlier rows from this machine are kept.
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
from _common import DATA, FORMER_TEXT_RECIPE, RESULTS, ants_bees, machine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import ImageClassifier, ImageEmbedder, TextClassifier, TextEmbedder

IMAGE_RECIPES = {
    # The fixed recipes the estimators defaulted to when these rows were measured
    # (the default is now freeze="auto": see real_auto.py).
    "ImageClassifier('efficientnet_lite0', freeze='last:3')": {"freeze": "last:3"},
    "ImageClassifier('efficientnet_lite0', freeze='backbone')": {"freeze": "backbone"},
    # What augment="auto" avoids: augmenting a head trained alone (a backbone pass per epoch).
    "ImageClassifier('efficientnet_lite0', freeze='backbone', augment='light')": {
        "freeze": "backbone",
        "augment": "light",
    },
}


def images(seeds):
    (X_train, y_train), (X_val, y_val) = ants_bees()
    data = "ants vs bees (train 245, val 153)"
    rows = []
    # The probe at the weights' own preprocessing (224 px) is the bar; the one at the
    # estimators' fine-tuning size (288 px) shows how much of the gain is resolution.
    for size in (None, 288):
        embedder = ImageEmbedder("efficientnet_lite0", image_size=size).fit(X_train)
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        probe.fit(embedder.transform(X_train), y_train)
        rows.append(
            {
                "data": data,
                "method": "linear probe (StandardScaler + LogisticRegression), "
                + ("224 px, the weights' preprocessing" if size is None else f"{size} px"),
                "seed": "-",
                "accuracy": probe.score(embedder.transform(X_val), y_val),
            }
        )
    for method, params in IMAGE_RECIPES.items():
        for seed in seeds:
            start = time.perf_counter()
            model = ImageClassifier("efficientnet_lite0", random_state=seed, **params).fit(X_train, y_train)
            rows.append(
                {
                    "data": data,
                    "method": method,
                    "seed": seed,
                    "accuracy": model.score(X_val, y_val),
                    "seconds": time.perf_counter() - start,
                }
            )
            print(rows[-1], flush=True)
    return rows


def texts(seeds):
    def read(name):
        return pd.read_csv(DATA / "sst2" / f"{name}.tsv", sep="\t", quoting=3, keep_default_na=False)

    train, dev = read("train").sample(n=2000, random_state=0), read("dev")
    embedder = TextEmbedder("all-MiniLM-L6-v2").fit(train["sentence"])
    probe = LogisticRegression(max_iter=5000).fit(embedder.transform(train["sentence"]), train["label"])
    data = "SST-2 (2,000 training phrases, dev 872)"
    rows = [
        {
            "data": data,
            "method": "linear probe on TextEmbedder features",
            "seed": "-",
            "accuracy": probe.score(embedder.transform(dev["sentence"]), dev["label"]),
        }
    ]
    for seed in seeds:
        start = time.perf_counter()
        model = TextClassifier("all-MiniLM-L6-v2", random_state=seed, **FORMER_TEXT_RECIPE)
        model.fit(train["sentence"], train["label"])
        rows.append(
            {
                "data": data,
                "method": "TextClassifier('all-MiniLM-L6-v2', freeze='none', lr=(1e-3, 5e-5))",
                "seed": seed,
                "accuracy": model.score(dev["sentence"], dev["label"]),
                "seconds": time.perf_counter() - start,
            }
        )
        print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=["images", "text"])
    args = parser.parse_args()
    rows = []
    if args.only in (None, "images"):
        rows += images(args.seeds)
    if args.only in (None, "text"):
        rows += texts(args.seeds)
    described = machine()
    stem = f"real-data-{described['host']}"
    rows = _keep_other_data(RESULTS / f"{stem}.json", described, rows)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"machine": described, "results": rows}, indent=2))
    lines = [
        "# Default recipes vs the linear probe on real data",
        "",
        "Machine: " + ", ".join(f"{k}={v}" for k, v in described.items()),
        "",
        "| data | method | seed | accuracy | fit seconds |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        seconds = f"{r['seconds']:.0f}" if "seconds" in r else ""
        lines.append(f"| {r['data']} | {r['method']} | {r['seed']} | {r['accuracy']:.3f} | {seconds} |")
    for data, method in dict.fromkeys((r["data"], r["method"]) for r in rows if r["seed"] != "-"):
        scores = [r["accuracy"] for r in rows if (r["data"], r["method"]) == (data, method)]
        lines.append(f"| {data} | {method}, mean over seeds | {len(scores)} | {np.mean(scores):.3f} | |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _keep_other_data(path, machine, rows):
    """With --only, keep the earlier rows of the other data set measured on this machine."""
    if not path.exists():
        return rows
    earlier = json.loads(path.read_text())
    shared = earlier["machine"].keys() & machine.keys()  # older files describe fewer fields
    if any(earlier["machine"][k] != machine[k] for k in shared):
        return rows
    fresh = {r["data"] for r in rows}
    return [r for r in earlier["results"] if r["data"] not in fresh] + rows


if __name__ == "__main__":
    main()
