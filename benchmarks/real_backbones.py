"""Which pretrained backbone: the probes of every bundled backbone, and BackboneSelector's choice.

    python benchmarks/real_backbones.py [--only images|text] [--cache DIR]

For each data set, first ``BackboneSelector`` chooses among the bundled backbones on the
training part only, with an empty feature cache (its fit time against the time its
candidates took to embed the training data is the cost bar); then each backbone's
probe is measured with the protocols of the hand-written reference (issue figures),
reading the training features back from the cache. Writes
``benchmarks/results/real-backbones-<host>.{json,md}``; about 30 minutes on 2 CPU cores.
"""

import argparse
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import DATA, RESULTS, ants_bees, machine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    StratifiedGroupKFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import BackboneSelector, ImageEmbedder, TextEmbedder, load_image_folder

IMAGE_BACKBONES = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
TEXT_BACKBONES = ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]


def image_probe():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def text_probe():
    return LogisticRegression(max_iter=5000)


def patient(path):
    return re.match(r"^((?:NORMAL2-)?IM-\d+|person\d+)", Path(path).name).group(1)


def choose(rows, data, X_train, y_train, X_test, y_test, candidates, cache, groups=None, cv=5, note=""):
    """BackboneSelector on the training part; its test score and its cost."""
    start = time.perf_counter()
    selector = BackboneSelector(candidates, cv=cv, cache=cache).fit(X_train, y_train, groups=groups)
    seconds = time.perf_counter() - start
    report = selector.report_
    row = {
        "data": data,
        "kind": "auto",
        "method": "BackboneSelector" + note,
        "chosen": selector.best_backbone_,
        "inner_scores": dict(zip(report["backbone"], report["score"].round(4))),
        "fit_seconds": seconds,
        "extract_seconds": float(report["extract_seconds"].sum()),
        "extract_by_candidate": dict(zip(report["backbone"], report["extract_seconds"].round(1))),
        "cost_ratio": seconds / float(report["extract_seconds"].sum()),
        "score": selector.score(X_test, y_test),
    }
    rows.append(row)
    print(row, flush=True)
    return selector


def features(backbone, X, cache, modality):
    embedder = (ImageEmbedder if modality == "image" else TextEmbedder)(backbone, cache=cache)
    start = time.perf_counter()
    out = embedder.fit(X).transform(X)
    return out, time.perf_counter() - start, embedder


def add(rows, data, protocol, backbone, score, **extra):
    rows.append(
        {"data": data, "kind": "probe", "method": protocol, "backbone": backbone, "score": score, **extra}
    )
    print(rows[-1], flush=True)


def images(cache):
    rows = []
    (a_train, ya_train), (a_val, ya_val) = ants_bees()
    data = "ants vs bees (train 245, val 153)"
    choose(rows, data, a_train, ya_train, a_val, ya_val, IMAGE_BACKBONES, cache)
    for backbone in IMAGE_BACKBONES:
        F_train, _, embedder = features(backbone, a_train, cache, "image")
        probe = image_probe().fit(F_train, ya_train)
        add(rows, data, "train -> val", backbone, probe.score(embedder.transform(a_val), ya_val))

    X, y = load_image_folder(DATA / "eurosat_rgb")
    rng = np.random.default_rng(0)  # the hand-written reference's draw: 30 of each class
    train = np.concatenate([rng.choice(np.flatnonzero(y == c), 30, replace=False) for c in np.unique(y)])
    test = np.setdiff1d(np.arange(len(X)), train)
    data = "EuroSAT (30 a class, default_rng(0) draw; test 700)"
    choose(rows, data, X[train], y[train], X[test], y[test], IMAGE_BACKBONES, cache)
    for backbone in IMAGE_BACKBONES:
        F, seconds, _ = features(backbone, X, cache, "image")
        probe = image_probe().fit(F[train], y[train])
        add(rows, data, "30 a class -> 700", backbone, probe.score(F[test], y[test]))
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        add(
            rows,
            "EuroSAT (1,000)",
            "stratified 5-fold",
            backbone,
            cross_val_score(image_probe(), F, y, cv=folds).mean(),
        )

    X, y = load_image_folder(DATA / "chest_xray_pneumonia")
    groups = np.array([patient(p) for p in X])
    folds = list(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(X, y, groups))
    data = "chest X-ray (400, 5-fold grouped by patient)"
    auto = []
    for k, (train, test) in enumerate(folds):
        inner = StratifiedGroupKFold(5, shuffle=True, random_state=0)
        choose(
            rows,
            data,
            X[train],
            y[train],
            X[test],
            y[test],
            IMAGE_BACKBONES,
            cache,
            groups[train],
            inner,
            note=f", outer fold {k}" + (" (cold cache)" if k == 0 else " (warm cache)"),
        )
        auto.append(rows[-1]["score"])
    rows.append(
        {
            "data": data,
            "kind": "auto",
            "method": "BackboneSelector, mean of the 5 outer folds",
            "score": float(np.mean(auto)),
        }
    )
    for backbone in IMAGE_BACKBONES:
        F, _, _ = features(backbone, X, cache, "image")
        scores = [image_probe().fit(F[tr], y[tr]).score(F[te], y[te]) for tr, te in folds]
        add(
            rows,
            data,
            "5-fold grouped by patient (the selector's outer folds)",
            backbone,
            float(np.mean(scores)),
        )
        # One image is 0.25 point and the fold assignment moves a backbone by up to 1.5 points:
        # the mean over five shuffles of the grouped folds is the steadier figure.
        shuffles = [
            cross_val_score(
                image_probe(), F, y, groups=groups, cv=StratifiedGroupKFold(5, shuffle=True, random_state=s)
            ).mean()
            for s in range(5)
        ]
        add(rows, data, "5-fold grouped by patient, mean of 5 shuffles", backbone, float(np.mean(shuffles)))
    return rows


def texts(cache):
    def read(name):
        return pd.read_csv(DATA / "sst2" / f"{name}.tsv", sep="\t", quoting=3, keep_default_na=False)

    train, dev = read("train"), read("dev")
    t2000, t8000 = train.sample(n=2000, random_state=0), train.sample(n=8000, random_state=0)
    rows = []
    data = "SST-2 (dev 872)"
    choose(
        rows,
        data + ", from 2,000",
        t2000["sentence"],
        t2000["label"],
        dev["sentence"],
        dev["label"],
        TEXT_BACKBONES,
        cache,
    )
    for backbone in TEXT_BACKBONES:
        for name, part in (("2,000", t2000), ("8,000", t8000)):
            F_pool, seconds, embedder = features(backbone, part["sentence"], cache, "text")
            probe = text_probe().fit(F_pool, part["label"])
            F_dev = embedder.transform(dev["sentence"])
            add(rows, data, f"probe from {name} phrases", backbone, probe.score(F_dev, dev["label"]))
        pool_labels = t8000["label"].to_numpy()  # the 8-a-class draws come from the 8,000
        scores = []
        for draw in range(10):
            rng = np.random.default_rng(draw)
            idx = np.concatenate(
                [rng.choice(np.flatnonzero(pool_labels == c), 8, replace=False) for c in (0, 1)]
            )
            scores.append(text_probe().fit(F_pool[idx], pool_labels[idx]).score(F_dev, dev["label"]))
        add(
            rows,
            data,
            "probe from 8 a class (10 draws)",
            backbone,
            float(np.mean(scores)),
            spread=[min(scores), max(scores)],
        )
        prompts = embedder.transform(["a negative review", "a positive review"])
        predicted = np.argmax(F_dev @ prompts.T, axis=1)
        add(
            rows,
            data,
            "zero-shot, cosine to 'a negative/positive review'",
            backbone,
            float(np.mean(predicted == dev["label"])),
        )
    return rows


def speeds():
    """Inputs embedded per second, decoding included, with no cache (the ants-vs-bees
    validation photos; the SST-2 dev phrases)."""
    rows = []
    (_, _), (photos, _) = ants_bees()
    dev = pd.read_csv(DATA / "sst2" / "dev.tsv", sep="\t", quoting=3, keep_default_na=False)["sentence"]
    for modality, backbones, X in (("image", IMAGE_BACKBONES, photos), ("text", TEXT_BACKBONES, dev)):
        for backbone in backbones:
            embedder = (ImageEmbedder if modality == "image" else TextEmbedder)(backbone).fit(X[:2])
            embedder.transform(X[:32])  # warm-up
            start = time.perf_counter()
            embedder.transform(X)
            rows.append(
                {
                    "data": f"{len(X)} {'photos' if modality == 'image' else 'phrases'}",
                    "kind": "speed",
                    "backbone": backbone,
                    "per_second": len(X) / (time.perf_counter() - start),
                }
            )
            print(rows[-1], flush=True)
    return rows


def write(rows, only):
    host = machine()["host"]
    path = RESULTS / f"real-backbones-{host}.json"
    if only and path.exists():  # keep the other modality's earlier rows
        kept = [r for r in json.loads(path.read_text())["rows"] if r.get("modality") != only]
        rows = kept + rows
    path.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1, default=str))
    frame = pd.DataFrame(rows)
    lines = [
        "# Backbones compared, and BackboneSelector's choice",
        "",
        f"Machine: {machine()}. Written by `benchmarks/real_backbones.py`.",
        "",
        "## Probes (frozen features through the library; StandardScaler + LogisticRegression for",
        "images, LogisticRegression for text)",
        "",
    ]
    probes = frame[frame["kind"] == "probe"].assign(task=lambda f: f["data"] + ": " + f["method"])
    table = probes.pivot_table(index="task", columns="backbone", values="score", sort=False)
    lines += [table.round(3).to_markdown(), ""]
    if "speed" in set(frame["kind"]):
        speed = frame[frame["kind"] == "speed"].pivot_table(
            index="data", columns="backbone", values="per_second"
        )
        lines += [
            "## Inputs embedded per second (decoding included, no cache)",
            "",
            speed.round(1).to_markdown(),
            "",
        ]
    lines += ["## Automatic choice (BackboneSelector, 5-fold inner CV on the training part)", ""]
    columns = [
        "data",
        "method",
        "chosen",
        "inner_scores",
        "fit_seconds",
        "extract_seconds",
        "cost_ratio",
        "score",
    ]
    auto = frame[frame["kind"] == "auto"].reindex(columns=columns)
    lines += [auto.round(3).to_markdown(index=False), ""]
    (RESULTS / f"real-backbones-{host}.md").write_text("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["images", "text", "speed"])
    parser.add_argument("--cache", help="feature cache folder (default: a fresh temporary one)")
    args = parser.parse_args()
    cache = args.cache or tempfile.mkdtemp(prefix="sktransfer-bench-")
    rows = []
    try:
        if args.only in (None, "images"):
            rows += [{**r, "modality": "images"} for r in images(cache)]
        if args.only in (None, "text"):
            rows += [{**r, "modality": "text"} for r in texts(cache)]
        if args.only in (None, "speed"):
            rows += [{**r, "modality": "speed"} for r in speeds()]
    finally:
        if not args.cache:
            shutil.rmtree(cache, ignore_errors=True)
    write(rows, args.only)


if __name__ == "__main__":
    main()
