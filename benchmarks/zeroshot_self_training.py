"""How transductive zero-shot self-trains, chosen on data other than SST-2 dev.

    python benchmarks/zeroshot_self_training.py [--backbones all-MiniLM-L6-v2 all-mpnet-base-v2]

``ZeroShotTextClassifier({0: "negative", 1: "positive"})`` fitted on unlabelled texts,
then self-trained with each setting: the logistic regression's ``C``, the share of the
most confident texts each round (a fixed half, or growing from 20 % to 80 %) and its
features (the raw embeddings, or centred on the texts and unit-norm). The settings are
ranked on the *design* sets only: three samples of 872 SST-2 training phrases and the
1,000 Yelp sentences, each classified after fitting on its own texts; SST-2 dev, the
test set of ``real_fewshot.py``, is shown beside them but plays no part in the choice.
Writes ``benchmarks/results/zeroshot-self-training-<host>.md``.
"""

import argparse
import itertools

import numpy as np
import pandas as pd
from _common import machine, results_path
from real_fewshot import NAMES, read, read_yelp

from sktransfer import ZeroShotTextClassifier
from sktransfer._descriptions import unit
from sktransfer._domains import SELF_TRAINING_C, SELF_TRAINING_FRACTION, self_train

SCHEDULES = {"half": 0.5, "20 % -> 80 %": np.linspace(0.2, 0.8, 5)}


def text_sets():
    """``{name: (texts, labels)}``: the design sets, then SST-2 dev."""
    train = read("train")
    sets = {f"SST-2 train phrases ({s})": train.sample(n=872, random_state=100 + s) for s in range(3)}
    sets["Yelp"] = read_yelp()
    sets["SST-2 dev (test)"] = read("dev")
    return {name: (frame["sentence"].tolist(), frame["label"].to_numpy()) for name, frame in sets.items()}


def accuracies(backbone, cache):
    rows = []
    for name, (texts, labels) in text_sets().items():
        model = ZeroShotTextClassifier(backbone, NAMES, rounds=0, cache=cache).fit(texts)
        E = model.embedder_.transform(texts)
        starting = model._similarities(E)
        features = {"raw": E, "centred, unit-norm": unit(E - model.center_)}
        for C, schedule, kind in itertools.product((1.0, 10.0, 100.0, 1000.0), SCHEDULES, features):
            head = self_train(features[kind], starting, rounds=5, fraction=SCHEDULES[schedule], C=C)
            accuracy = float((head.predict(features[kind]) == labels).mean())
            rows.append(
                {"C": C, "share a round": schedule, "features": kind, "set": name, "accuracy": accuracy}
            )
        print(name, "done", flush=True)
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["all-MiniLM-L6-v2", "all-mpnet-base-v2"])
    parser.add_argument("--cache", default=None, help="feature cache folder")
    args = parser.parse_args()
    settings = ["C", "share a round", "features"]
    tables, design_means = [], []
    for backbone in args.backbones:
        table = accuracies(backbone, args.cache).pivot_table(index=settings, columns="set", values="accuracy")
        design = [c for c in table.columns if "test" not in c]
        table.insert(0, "design mean", table[design].mean(axis=1))
        design_means.append(table["design mean"].rename(backbone))
        tables += [f"## {backbone}", "", table.sort_values("design mean").round(3).to_markdown(), ""]
    both = pd.concat(design_means, axis=1)
    both["mean"] = both.mean(axis=1)
    lines = [
        "# Transductive zero-shot: how to self-train, chosen on design sets",
        "",
        f"Machine: {machine()}. Written by `benchmarks/zeroshot_self_training.py`; class names",
        '`{0: "negative", 1: "positive"}`, default templates, 5 rounds, each set classified after',
        "fitting on its own texts. The design mean averages the three SST-2 training samples and",
        "Yelp; SST-2 dev is the test set of `real_fewshot.py` and takes no part in the choice.",
        f"The library uses C={SELF_TRAINING_C:g}, a share of {SELF_TRAINING_FRACTION:g} a round,",
        "the raw embeddings.",
        "",
        "## Design mean over both encoders",
        "",
        both.sort_values("mean").round(3).to_markdown(),
        "",
        *tables,
    ]
    results_path("zeroshot-self-training", "md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
