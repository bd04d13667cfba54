"""How to fit a new head on frozen features: the probe that starts every fine-tuning.

    python benchmarks/probe_heads.py

On the ants-vs-bees photos at the fine-tuning size (288 px), compares heads fitted on
frozen EfficientNet-Lite0 features: from a random head with the estimators' epochs
(AdamW, warm-up + cosine, batch 32), the earlier probe (300 full-batch AdamW steps at
1e-2), and the current probe (L-BFGS with a cross-validated L2 penalty), each
optionally followed by epochs. Scored by 3x repeated 5-fold CV on the 245 training
photos (what a recipe should be chosen on) and on the 153 ``val`` photos.

A second table shows how much the L-BFGS probe's ``val`` accuracy hangs on its L2
penalty: each penalty of the grid held fixed, then the penalty chosen by 3-fold (the
estimators'), 5-fold and 10-fold cross-validation of the loss, with the estimators'
label-smoothed loss and with plain cross-entropy, for seeds 0-2 (the seed draws the
folds). Writes ``benchmarks/results/probe-heads-<host>.md``; about 3 minutes on 2 CPU
cores.
"""

import math

import numpy as np
import torch
from _common import ants_bees, machine, results_path
from sklearn.model_selection import StratifiedKFold

from sktransfer import ImageEmbedder
from sktransfer.finetune._probe import PROBE_PENALTIES, fit_head_on_features
from sktransfer.finetune._schedules import WarmupCosine

CRITERION = torch.nn.CrossEntropyLoss(label_smoothing=0.1)  # the estimators' default loss
RECIPES = {  # (initial head, epochs afterwards)
    "random head + 3 epochs": ("random", 3),
    "random head + 10 epochs": ("random", 10),
    "earlier probe (AdamW 300 steps)": ("adamw", 0),
    "earlier probe + 10 epochs": ("adamw", 10),
    "cross-validated L-BFGS probe": ("lbfgs", 0),
    "cross-validated L-BFGS probe + 3 epochs": ("lbfgs", 3),
    "cross-validated L-BFGS probe + 10 epochs": ("lbfgs", 10),
}


def fit(recipe, X, y, seed):
    start, epochs = recipe
    torch.manual_seed(seed)
    head = torch.nn.Linear(X.shape[1], 2)
    if start == "adamw":
        optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=0.01)
        for _ in range(300):
            optimizer.zero_grad()
            CRITERION(head(X), y).backward()
            optimizer.step()
    elif start == "lbfgs":
        fit_head_on_features(head, X, y, CRITERION, seed=seed)
    if epochs:
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(epochs * math.ceil(len(y) / 32)))
        for _ in range(epochs):
            order = torch.randperm(len(y), generator=generator)
            for i in range(0, len(y), 32):
                batch = order[i : i + 32]
                optimizer.zero_grad()
                CRITERION(head(X[batch]), y[batch]).backward()
                optimizer.step()
                schedule.step()
    return head


def penalty_lines(X, y, V, v):
    """The probe's ``val`` accuracy against its L2 penalty, fixed or cross-validated."""
    lines = [
        "",
        "## The L-BFGS probe and its L2 penalty",
        "",
        "| penalty | CV accuracy | val accuracy (seeds 0-2) | penalty chosen (seeds 0-2) |",
        "|---|---|---|---|",
    ]
    plain = torch.nn.CrossEntropyLoss()
    settings = {f"fixed {p:g}": dict(penalties=(p,)) for p in PROBE_PENALTIES}
    settings.update({f"chosen by {k}-fold CV of the loss": dict(folds=k) for k in (3, 5, 10)})
    settings["chosen by 3-fold CV, plain cross-entropy (no label smoothing)"] = dict(criterion=plain)
    for name, options in settings.items():
        options = {"criterion": CRITERION, **options}

        def probe(X_fit, y_fit, seed):
            torch.manual_seed(seed)
            head = torch.nn.Linear(X_fit.shape[1], 2)
            return head, fit_head_on_features(head, X_fit, y_fit, seed=seed, **options)

        cv = [
            evaluate(probe(X[train], y[train], repeat)[0], X[test], y[test])[0]
            for repeat in range(3)
            for train, test in StratifiedKFold(5, shuffle=True, random_state=repeat).split(X, y)
        ]
        fitted = [probe(X, y, seed) for seed in range(3)]
        val = ", ".join(f"{evaluate(head, V, v)[0]:.3f}" for head, _ in fitted)
        chosen = ", ".join(f"{penalty:g}" for _, penalty in fitted)
        lines.append(f"| {name} | {np.mean(cv):.3f} | {val} | {chosen} |")
        print(lines[-1], flush=True)
    return lines


def evaluate(head, X, y):
    with torch.no_grad():
        out = head(X)
    return float((out.argmax(1) == y).float().mean()), float(torch.nn.functional.cross_entropy(out, y))


def main():
    (X_train, y_train), (X_val, y_val) = ants_bees()
    embedder = ImageEmbedder("efficientnet_lite0", image_size=288).fit(X_train)
    X, V = (torch.tensor(embedder.transform(images)) for images in (X_train, X_val))
    y, v = (torch.tensor((np.asarray(labels) == "bees").astype(int)) for labels in (y_train, y_val))
    lines = [
        "# Heads fitted on frozen features (ants vs bees, EfficientNet-Lite0, 288 px)",
        "",
        "Machine: " + ", ".join(f"{k}={v}" for k, v in machine().items()),
        "",
        "| head | CV accuracy | CV log-loss | val accuracy (seeds 0-2) | val log-loss |",
        "|---|---|---|---|---|",
    ]
    for name, recipe in RECIPES.items():
        cv = [
            evaluate(fit(recipe, X[train], y[train], repeat), X[test], y[test])
            for repeat in range(3)
            for train, test in StratifiedKFold(5, shuffle=True, random_state=repeat).split(X, y)
        ]
        val = [evaluate(fit(recipe, X, y, seed), V, v) for seed in range(3)]
        cv, val = np.array(cv), np.array(val)
        scores = ", ".join(f"{a:.3f}" for a in val[:, 0])
        lines.append(
            f"| {name} | {cv[:, 0].mean():.3f} | {cv[:, 1].mean():.3f} | {scores} | {val[:, 1].mean():.3f} |"
        )
        print(lines[-1], flush=True)
    lines += penalty_lines(X, y, V, v)
    out = results_path("probe-heads", "md")
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
