"""Which part of the network to train, measured where it matters: ``freeze="auto"`` against
the fixed recipes it chooses among, on data far from ImageNet and on ants vs bees.

    python benchmarks/real_auto.py [--seeds 0 1 2] [--only eurosat chest ants]
                                   [--recipes auto last:3 ...]

Data (``../shared/data``):
- EuroSAT RGB: 30 labelled images a class for training (the fixed ``default_rng(0)``
  draw of the backbone benchmark), the other 700 for testing;
- chest X-rays: split 50/50 by patient (the first fold of ``StratifiedGroupKFold(2)``,
  shuffled with the seed), so no patient is on both sides; ``freeze="auto"`` gets the
  training patients as ``groups``;
- ants vs bees: ``train`` (245) and ``val`` (153), as in ``real_data.py``;
- SST-2: 2,000 training phrases (``sample(2000, random_state=0)``), dev 872, with
  ``TextClassifier("all-MiniLM-L6-v2")`` (fixed default ``freeze="none"``; default
  ``lr=(1e-3, 2e-4)`` since 2026-12-01, chosen in ``text_recipe.py``).

Recipes, all on the bundled EfficientNet-Lite0:
- the frozen probe (``ImageEmbedder`` + ``StandardScaler`` + ``LogisticRegression``) at
  224 and 288 px;
- ``ImageClassifier`` with its defaults and ``freeze`` in {"backbone", "last:3",
  "none", "first:3"} (``"last:3"`` is the fixed default: its fit time is the cost unit of
  ``auto_budget``);
- ``ImageClassifier(freeze="auto")`` (``auto_budget=2.5``), the image estimators' default
  since it met the bars: its choice, and its fit time as a multiple of the ``last:3`` fit on
  the same data and seed.

The probes are deterministic (the splits of EuroSAT and ants vs bees do not depend on
the seed): ``--recipes`` runs a subset. Writes
``benchmarks/results/real-auto-<host>.{json,md}`` (rows merged by data, recipe and seed);
about 20 minutes a seed and data set on 2 CPU cores.
"""

import argparse
import time

import numpy as np
import pandas as pd
from _common import DATA, ants_bees, auto_choice, chest_xray_split, machine, merge_results, results_path
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import ImageClassifier, ImageEmbedder, TextClassifier, load_image_folder

FREEZES = ["backbone", "last:3", "none", "first:3"]
PROBE_SIZES = [224, 288]
RECIPES = [f"probe {s} px" for s in PROBE_SIZES] + FREEZES + ["auto"]


def eurosat(seed):
    X, y = load_image_folder(DATA / "eurosat_rgb")
    rng = np.random.default_rng(0)  # one fixed draw, as in the backbone benchmark
    train = np.concatenate([rng.choice(np.flatnonzero(y == c), 30, replace=False) for c in np.unique(y)])
    test = np.setdiff1d(np.arange(len(X)), train)
    return X[train], y[train], X[test], y[test], None


def chest(seed):
    X, y, groups, train, test = chest_xray_split(seed)
    return X[train], y[train], X[test], y[test], groups[train]


def ants(seed):
    (X_train, y_train), (X_test, y_test) = ants_bees()
    return X_train, y_train, X_test, y_test, None


def sst2(seed):
    def read(name):
        return pd.read_csv(DATA / "sst2" / f"{name}.tsv", sep="\t", quoting=3, keep_default_na=False)

    train, dev = read("train").sample(n=2000, random_state=0), read("dev")
    return train["sentence"], train["label"], dev["sentence"], dev["label"], None


DATASETS = {
    "eurosat": ("EuroSAT (30 a class -> 700)", eurosat),
    "chest": ("chest X-ray (50/50 by patient)", chest),
    "ants": ("ants vs bees (train 245, val 153)", ants),
    "sst2": ("SST-2 (2,000 training phrases, dev 872)", sst2),
}
TEXTS = {"sst2"}


def run(name, seed, recipes):
    label, load = DATASETS[name]
    X_train, y_train, X_test, y_test, groups = load(seed)
    rows = []
    for size in PROBE_SIZES:
        if f"probe {size} px" not in recipes:
            continue
        start = time.perf_counter()
        model = make_pipeline(
            ImageEmbedder("efficientnet_lite0", image_size=size),
            StandardScaler(),
            LogisticRegression(max_iter=5000),
        )
        score = model.fit(X_train, y_train).score(X_test, y_test)
        rows.append(row(label, f"probe {size} px", seed, score, time.perf_counter() - start))
        print(rows[-1], flush=True)
    for freeze in [f for f in FREEZES + ["auto"] if f in recipes]:
        start = time.perf_counter()
        if name in TEXTS:
            clf = TextClassifier("all-MiniLM-L6-v2", freeze=freeze, random_state=seed)
        else:
            clf = ImageClassifier("efficientnet_lite0", freeze=freeze, random_state=seed)
        clf.fit(X_train, y_train, groups=groups)
        seconds = time.perf_counter() - start
        rows.append(
            row(label, f"{type(clf).__name__} freeze={freeze!r}", seed, clf.score(X_test, y_test), seconds)
        )
        if freeze == "auto":
            report = clf.auto_report_
            rows[-1]["chosen"] = auto_choice(clf)
            rows[-1]["report"] = report.to_dict(orient="records")
            print(report.to_string(), flush=True)
        print({k: v for k, v in rows[-1].items() if k != "report"}, flush=True)
    return rows


def row(data, recipe, seed, accuracy, seconds):
    return {"data": data, "recipe": recipe, "seed": seed, "accuracy": float(accuracy), "fit_seconds": seconds}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=RECIPES)
    args = parser.parse_args()
    new, rows = [], []
    for name in args.only:
        for seed in args.seeds:
            new += run(name, seed, args.recipes)
            # written after every seed: an interrupted run keeps what it measured
            rows = merge_results("real-auto", new, key=lambda r: (r["data"], r["recipe"], r["seed"]))
    text = markdown(rows)
    results_path("real-auto", "md").write_text(text)
    print(text)


def markdown(rows):
    table = pd.DataFrame(rows)
    summary = table.groupby(["data", "recipe"]).agg(
        accuracy=("accuracy", "mean"),
        low=("accuracy", "min"),
        seeds=("seed", "count"),
        seconds=("fit_seconds", "mean"),
    )
    lines = [
        "# Which part to train: freeze='auto' and the fixed recipes",
        "",
        f"Machine: {machine()}. Produced by `benchmarks/real_auto.py`; EfficientNet-Lite0.",
        "",
        "| data | recipe | accuracy (mean over seeds) | lowest | seeds | seconds (probes: fit and scoring) |",
        "|---|---|---|---|---|---|",
    ]
    for (data, recipe), r in summary.iterrows():
        lines.append(
            f"| {data} | {recipe} | {r.accuracy:.3f} | {r.low:.3f} | {int(r.seeds)} | {r.seconds:.0f} |"
        )
    lines += auto_lines(table, summary)
    return "\n".join(lines) + "\n"


def auto_lines(table, summary):
    """freeze='auto' per seed: its choice, its cost in fits of last:3 (same data; same seed
    when measured, else their mean), and the bar: the best fixed recipe minus 0.5 point."""
    auto = table[table["recipe"].str.endswith("freeze='auto'")]
    if auto.empty:
        return []
    lines = [
        "",
        "## freeze='auto' (auto_budget=2.5)",
        "",
        "| data | seed | accuracy | chosen | seconds | default fit seconds | cost (default fits) |",
        "|---|---|---|---|---|---|---|",
    ]
    # The cost unit: one fit of the fixed default (images "last:3", texts "none").
    default = table[table["recipe"].isin(["ImageClassifier freeze='last:3'", "TextClassifier freeze='none'"])]
    for _, r in auto.sort_values(["data", "seed"]).iterrows():
        same = default[(default["data"] == r["data"]) & (default["seed"] == r["seed"])]
        unit = (same if len(same) else default[default["data"] == r["data"]])["fit_seconds"].mean()
        lines.append(
            f"| {r['data']} | {r['seed']} | {r['accuracy']:.3f} | {r['chosen']} | {r['fit_seconds']:.0f} "
            f"| {unit:.0f} | {r['fit_seconds'] / unit:.2f} |"
        )
    lines += [
        "",
        "| data | auto (mean) | best fixed recipe (mean) | bar: best - 0.005 | met |",
        "|---|---|---|---|---|",
    ]
    for data, group in summary.groupby(level="data"):
        recipes = group.index.get_level_values("recipe")
        auto_recipe = next((r for r in recipes if r.endswith("freeze='auto'")), None)
        # the bar's fixed recipes: all but auto and first:3
        fixed = group[[r != auto_recipe and not r.endswith("freeze='first:3'") for r in recipes]]
        if auto_recipe is None or fixed.empty:
            continue
        mean = group.loc[(data, auto_recipe), "accuracy"]
        best = fixed["accuracy"].idxmax()[1]
        bar = fixed["accuracy"].max() - 0.005
        lines.append(
            f"| {data} | {mean:.3f} | {best} {fixed['accuracy'].max():.3f} | {bar:.3f} | {mean >= bar} |"
        )
    return lines + AUTO_NOTES


AUTO_NOTES = [
    "",
    "Notes (every `auto` row was run again on 2026-11-30, with the rules below):",
    "",
    "- A fine-tuning candidate is compared with the best head on the shared holdout fold",
    "  by the cross-entropy at each one's best temperature (`holdout_loss` in",
    "  `auto_report_`; fine-tuning's label smoothing shrinks its logits), not by accuracy.",
    "  By accuracy (ties to the head), EuroSAT scored 0.911 / 0.906 / 0.907 (0.908): on",
    "  seed 2 the 352 px head and `last:3` both had 55 of 60 holdout images right, and",
    "  `last:3`'s loss was the lower (0.248 against 0.260). Ants vs bees and the chest",
    "  X-rays chose the same recipes under both rules.",
    "- Head-only candidates are ranked by their mean held-out log-loss, fitted without",
    "  label smoothing (a head alone is a logistic regression), their penalty folds",
    "  grouped by patient on the chest X-rays. Before (accuracy ranking, smoothed heads):",
    "  ants vs bees 0.954 / 0.974 / 0.974 (mean 0.967), EuroSAT 0.911 / 0.897 / 0.906",
    "  (0.905), chest 0.945 / 0.945 / 0.965 (0.952). Unsmoothed heads still ranked by",
    "  accuracy (a run stopped after the chest's seed 1): ants 0.948 / 0.948 / 0.967 (224 px",
    "  chosen twice), chest 0.940 / 0.940.",
    "- Default-fit times: EuroSAT seeds 0 and 2 and every chest seed were measured in the",
    "  same session as the image `auto` rows (this machine ran about 1.7x slower than in",
    "  the earlier runs: EuroSAT `last:3` 166 -> 270 s); the other seeds' come from earlier",
    "  runs, so their costs are overstated. EuroSAT seed 1's `auto` time (346 s) includes",
    "  a minute and a half of unit tests sharing the two cores.",
    "- The grouped penalty folds change the chest's fixed recipes through their probe head",
    "  (`last:3` seed 2: 0.905 -> 0.920): `backbone` (every seed), `last:3` (every seed) and",
    "  `none` (seed 1) were measured again; `first:3` and `none` on seeds 0 and 2 predate it.",
    "- SST-2 (text): the search has one head-only candidate (unsmoothed), `last:2` and",
    "  `none`. Its bar is absolute: the default >= 0.81. With the earlier text rate",
    "  `lr=(1e-3, 5e-5)`, `auto` chose `none` on every seed (0.812 / 0.799 / 0.813, mean",
    "  0.808, the fixed default's figures; by holdout accuracy it had chosen `last:2` on",
    "  seed 2, 0.792): short of the bar. The SST-2 rows above were measured again on",
    "  2026-12-01 with the new rate `(1e-3, 2e-4)`, chosen on other SST-2 training phrases",
    "  (`text_recipe.py`): the fixed default `none` 0.826 / 0.813 / 0.815 (0.818), `auto`",
    "  0.826 / 0.813 / 0.790 (0.810): on seed 2 the race after 1 of 4 epochs kept `last:2`",
    "  (holdout loss 0.364 at the end) and stopped `none` (0.414 after its first epoch).",
    "  So `none` stays the text default and meets the bar; `auto` is the image default.",
    "- SST-2 times: two minutes of unit tests shared the cores during seed 0's fixed fit",
    "  (411 s against about 300 s undisturbed) and a minute and a half during seed 1's",
    "  `auto` (629 s): their costs (1.28, 2.30) are off; seed 2's (0.96) is clean.",
    '- The image rows hold for the default: `ImageClassifier("efficientnet_lite0",',
    "  random_state=0)` with no `freeze` given, fitted on 2026-12-01 with the code of that",
    "  day, chose the head alone at 288 px and scored 0.980 on ants vs bees, as seed 0's",
    "  `auto` row (278 s).",
]


if __name__ == "__main__":
    main()
