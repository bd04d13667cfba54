"""Domain adaptation on real shifts: what is chosen without target labels, against source only.

    python benchmarks/real_adaptation.py [--only frozen|deep|text|clusters] [--seeds 0 1 2]

- frozen: ``DomainAdaptedClassifier`` on frozen features, every ordered Office-Caltech-10
  pair (amazon, dslr, webcam; EfficientNet-Lite0, and Lite2 as a backbone the rules
  were not tuned on) and SST-2 (8,000 phrases) -> Yelp (MiniLM, and MPNet), for each
  adaptation; skada's CORAL (reg 1.0) and entropic OT beside them. Target labels only score.
- deep: ``ImageClassifier`` amazon -> webcam with and without ``adaptation``, same seeds
  (``--deep-freeze last:3 --deep-adaptations none dann coral mmd --device cuda``: the
  feature losses, which need a backbone that trains; ``benchmarks/gpu_check.sh`` runs them).
- text: ``TextClassifier`` SST-2 -> Yelp with and without ``adaptation``, same seeds, in
  the text recipe of the time its rows were measured (``FORMER_TEXT_RECIPE``).
- clusters: k-means on frozen features and on features of a model fine-tuned on a
  labelled source, adjusted Rand index (EuroSAT: fine-tuned on 30 labelled images a
  class, the other 700 clustered; Office: fine-tuned on amazon, webcam clustered).

Rows merge into ``benchmarks/results/real-adaptation-<host>.{json,md}`` (a row replaces
an earlier one of the same section, data and method).
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from _common import DATA, FORMER_TEXT_RECIPE, adaptation_arg, machine, merge_results, results_path
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from sktransfer import ImageClassifier, ImageEmbedder, TextClassifier, TextEmbedder, load_image_folder
from sktransfer.adaptation import DomainAdaptedClassifier

OFFICE = ("amazon", "dslr", "webcam")
CACHE = None  # --cache: features are computed once per backbone and data set


def office(domain):
    paths, labels = load_image_folder(DATA / "office_caltech_10" / domain)[:2]
    return np.asarray(paths), np.asarray(labels)


def reviews():
    sst = pd.read_csv(DATA / "sst2" / "train.tsv", sep="\t", quoting=3, keep_default_na=False)
    sst = sst.sample(n=8000, random_state=0)
    yelp = pd.read_csv(
        DATA / "reviews" / "yelp_labelled.txt", sep="\t", header=None, names=["sentence", "label"], quoting=3
    )
    return (sst["sentence"].tolist(), sst["label"].to_numpy()), (
        yelp["sentence"].tolist(),
        yelp["label"].to_numpy(),
    )


def both(source, target):
    """X, y (target labels masked: None), sample_domain for a source and a target."""
    (Xs, ys), (Xt, _) = source, target
    X = list(Xs) + list(Xt) if isinstance(Xs, list) else np.concatenate([Xs, Xt])
    y = np.concatenate([np.asarray(ys, dtype=object), np.full(len(Xt), None)])
    domains = np.r_[np.ones(len(Xs), int), -np.ones(len(Xt), int)]
    return X, y, domains


def adaptations():
    from skada import CORALAdapter, EntropicOTMappingAdapter

    return {
        "none": "none",
        "center": "center",
        "self_training": "self_training",
        "auto": "auto",
        "skada CORAL(reg=1)": CORALAdapter(reg=1.0),
        "skada entropic OT": EntropicOTMappingAdapter(),
        "skada entropic OT (median norm)": EntropicOTMappingAdapter(norm="median"),
    }


def frozen_rows(data, features, labels, pairs):
    """Each adaptation on each (source, target) pair of precomputed features."""
    rows = []
    for source, target in pairs:
        X = np.vstack([features[source], features[target]])
        y = np.concatenate([labels[source].astype(object), np.full(len(labels[target]), None)])
        domains = np.r_[np.ones(len(labels[source]), int), -np.ones(len(labels[target]), int)]
        for name, adaptation in adaptations().items():
            start = time.perf_counter()
            try:
                clf = DomainAdaptedClassifier(adaptation=adaptation).fit(X, y, sample_domain=domains)
                score = clf.score(features[target], labels[target])
                report = {k: v for k, v in clf.report_.items() if k != "adaptation"}
            except ValueError as exc:  # an adapter's NaN features, named
                score, report = float("nan"), {"error": str(exc)[:120]}
            row = {
                "section": "frozen",
                "data": data,
                "pair": f"{source}->{target}",
                "method": name,
                "score": round(float(score), 4),
                "seconds": round(time.perf_counter() - start, 1),
                **{k: v for k, v in report.items() if k != "seconds"},
            }
            rows.append(row)
            print(row, flush=True)
    return rows


def embed(embedder, X):
    return embedder.fit(X).transform(X)


def section_frozen():
    rows = []
    for backbone in ("efficientnet_lite0", "efficientnet_lite2"):
        embedder = ImageEmbedder(backbone, cache=CACHE)
        features, labels = {}, {}
        for domain in OFFICE:
            paths, labels[domain] = office(domain)
            features[domain] = embed(embedder, paths)
        pairs = [(s, t) for s in OFFICE for t in OFFICE if s != t]
        rows += frozen_rows(f"Office-Caltech-10, {backbone}", features, labels, pairs)
    source, target = reviews()
    for backbone in ("all-MiniLM-L6-v2", "all-mpnet-base-v2"):
        embedder = TextEmbedder(backbone, cache=CACHE)
        features = {"sst2": embed(embedder, source[0]), "yelp": embed(embedder, target[0])}
        labels = {"sst2": source[1], "yelp": target[1]}
        rows += frozen_rows(f"SST-2 -> Yelp, {backbone}", features, labels, [("sst2", "yelp")])
    return rows


def fit_score(make, X, y, domains, X_test, y_test, **row):
    start = time.perf_counter()
    clf = make().fit(X, y, sample_domain=domains)
    row.update(
        score=round(float(clf.score(X_test, y_test)), 4), seconds=round(time.perf_counter() - start, 1)
    )
    print(row, flush=True)
    return row


def section_deep(
    seeds, freeze="backbone", adaptations=("none", "adabn+pseudo_label+mcc"), device="auto", weight=2.0
):
    """``adaptations``: names, ``+`` joining the methods of one combination; ``weight``:
    their ``adaptation_weight``."""
    source, target = office("amazon"), office("webcam")
    X, y, domains = both(source, target)
    rows = []
    for seed in seeds:
        for name in adaptations:
            adaptation = adaptation_arg(name)
            rows.append(
                fit_score(
                    lambda: ImageClassifier(
                        freeze=freeze, adaptation=adaptation, adaptation_weight=weight,
                        random_state=seed, device=device,
                    ),
                    X, y, domains, *target,
                    section="deep", data="Office amazon->webcam", pair="amazon->webcam",
                    method=deep_method(freeze, adaptation, weight), seed=seed,
                    device=device,
                )
            )  # fmt: skip
    return rows


def deep_method(freeze, adaptation, weight):
    """The estimator's name in the results; the weight only where it plays a part."""
    extra = "" if adaptation == "none" or weight == 1.0 else f", adaptation_weight={weight:g}"
    return f"ImageClassifier(freeze={freeze!r}, adaptation={adaptation!r}{extra})"


def section_text(seeds, adaptations=("none", "pseudo_label")):
    """``adaptations``: names, ``+`` joining the methods of one combination."""
    source, target = reviews()
    X, y, domains = both(source, target)
    rows = []
    for seed in seeds:
        for name in adaptations:
            adaptation = adaptation_arg(name)
            rows.append(
                fit_score(
                    lambda: TextClassifier(
                        max_epochs=1, adaptation=adaptation, random_state=seed, **FORMER_TEXT_RECIPE
                    ),
                    X, y, domains, *target,
                    section="text", data="SST-2 8,000 -> Yelp", pair="sst2->yelp",
                    method=f"TextClassifier(max_epochs=1, adaptation={adaptation!r})", seed=seed,
                )
            )  # fmt: skip
    return rows


def clusters(data, features, labels, method):
    k = len(np.unique(labels))
    predicted = KMeans(k, n_init=10, random_state=0).fit_predict(features)
    row = {
        "section": "clusters",
        "data": data,
        "pair": "",
        "method": method,
        "score": round(float(adjusted_rand_score(labels, predicted)), 4),
    }
    print(row, flush=True)
    return row


def section_clusters():
    rows = []
    paths, labels = load_image_folder(DATA / "eurosat_rgb")[:2]
    paths, labels = np.asarray(paths), np.asarray(labels)
    rng = np.random.default_rng(0)
    train = np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), 30, replace=False) for c in np.unique(labels)]
    )
    rest = np.setdiff1d(np.arange(len(labels)), train)
    frozen = ImageEmbedder(cache=CACHE)
    data = "EuroSAT, 700 images not used for fine-tuning"
    rows.append(
        clusters(data, embed(frozen, paths[rest]), labels[rest], "frozen efficientnet_lite0 + KMeans")
    )
    tuned = ImageClassifier(freeze="last:3", max_epochs=5, random_state=0).fit(paths[train], labels[train])
    rows.append(
        clusters(
            data, tuned.transform(paths[rest]), labels[rest], "fine-tuned (5 epochs) on 30 a class + KMeans"
        )
    )
    (source, source_labels), (webcam, webcam_labels) = office("amazon"), office("webcam")
    data = "Office webcam (295 images)"
    rows.append(clusters(data, embed(frozen, webcam), webcam_labels, "frozen efficientnet_lite0 + KMeans"))
    tuned = ImageClassifier(freeze="last:3", max_epochs=5, random_state=0).fit(source, source_labels)
    rows.append(
        clusters(data, tuned.transform(webcam), webcam_labels, "fine-tuned (5 epochs) on amazon + KMeans")
    )
    return rows


def write(rows):
    def key(row):
        return row["section"], row["data"], row["pair"], row["method"], row.get("seed")

    rows = merge_results("real-adaptation", rows, key)
    frame = pd.DataFrame(rows)
    lines = [
        "# Domain adaptation: target accuracy without target labels",
        "",
        f"Machine: {machine()}. Written by `benchmarks/real_adaptation.py`; target labels",
        "are read only to score. `changed_vs_source_only`: share of target predictions that",
        "differ from the source-only classifier's.",
        "",
    ]
    frozen = frame[frame["section"] == "frozen"]
    if len(frozen):
        lines += ["## Frozen features: DomainAdaptedClassifier and skada adapters", ""]
        table = frozen.pivot_table(index=["data", "pair"], columns="method", values="score", sort=False)
        lines += [table.round(4).to_markdown(), ""]
        means = frozen.groupby(["data", "method"], sort=False)["score"].mean().unstack()
        lines += ["Mean over the pairs of each data set and backbone:", "", means.round(4).to_markdown(), ""]
        auto = frozen[frozen["method"] == "auto"]
        columns = ["data", "pair", "cluster_agreement", "refined", "changed_vs_source_only", "seconds"]
        lines += ["What `auto` did:", "", auto[columns].to_markdown(index=False), ""]
    for section, title in (
        ("deep", "Deep adaptation: ImageClassifier"),
        ("text", "Deep adaptation: TextClassifier"),
        ("clusters", "Unsupervised transfer: k-means, adjusted Rand index"),
    ):
        part = frame[frame["section"] == section].dropna(axis=1, how="all")
        if len(part):
            lines += [f"## {title}", "", part.drop(columns=["section"]).to_markdown(index=False), ""]
    results_path("real-adaptation", "md").write_text("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["frozen", "deep", "text", "clusters"], action="append")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cache", default="/tmp/sktransfer-adaptation-cache", help="feature cache folder")
    parser.add_argument("--deep-freeze", default="backbone", help="freeze of the deep section's estimator")
    parser.add_argument(
        "--deep-adaptations",
        nargs="+",
        default=["none", "adabn+pseudo_label+mcc"],
        help="the deep section's adaptations; '+' combines methods",
    )
    parser.add_argument("--deep-weight", type=float, default=2.0, help="the deep section's adaptation_weight")
    parser.add_argument("--device", default="auto", help="the deep section's device")
    parser.add_argument(
        "--text-adaptations",
        nargs="+",
        default=["none", "pseudo_label"],
        help="the text section's adaptations; '+' combines methods",
    )
    args = parser.parse_args()
    global CACHE
    CACHE = args.cache
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    sections = args.only or ["frozen", "deep", "text", "clusters"]
    for section in sections:
        if section == "frozen":
            rows = section_frozen()
        elif section == "deep":
            rows = section_deep(
                args.seeds, args.deep_freeze, args.deep_adaptations, args.device, args.deep_weight
            )
        elif section == "text":
            rows = section_text(args.seeds, args.text_adaptations)
        else:
            rows = section_clusters()
        write(rows)


if __name__ == "__main__":
    main()
