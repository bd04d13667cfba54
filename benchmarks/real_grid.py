"""Which layers to freeze, asked of GridSearchCV on the ants-vs-bees photos.

    python benchmarks/real_grid.py [--max-epochs 3] [--cv 3]

The search of the fine-tuning guide: ``freeze`` x ``lr`` with 3-fold cross-validation
on the 245 training photos, then the refitted best model scored on the 153 ``val``
photos. Writes ``benchmarks/results/real-grid-<host>.{json,md}``; about 25 minutes on
2 CPU cores.
"""

import argparse
import json
import time

import pandas as pd
from _common import RESULTS, ants_bees, machine
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sktransfer import ImageClassifier

GRID = {"freeze": ["backbone", "last:1", "last:3", "none"], "lr": [1e-3, 3e-4]}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--cv", type=int, default=3)
    args = parser.parse_args()
    (X_train, y_train), (X_val, y_val) = ants_bees()
    search = GridSearchCV(
        ImageClassifier("efficientnet_lite0", max_epochs=args.max_epochs, random_state=0),
        GRID,
        cv=StratifiedKFold(args.cv, shuffle=True, random_state=0),
        verbose=2,
    )
    start = time.perf_counter()
    search.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    table = pd.DataFrame(search.cv_results_)[
        ["param_freeze", "param_lr", "mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time"]
    ].sort_values("rank_test_score")
    result = {
        "machine": machine(),
        "max_epochs": args.max_epochs,
        "cv": args.cv,
        "best_params": search.best_params_,
        "val_accuracy_of_refitted_best": search.score(X_val, y_val),
        "search_seconds": seconds,
        "cv_results": json.loads(table.to_json(orient="records")),
    }
    out = RESULTS / f"real-grid-{result['machine']['host']}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def markdown(result):
    table = pd.DataFrame(result["cv_results"])
    return (
        "\n".join(
            [
                "# GridSearchCV over freeze x lr, ants vs bees",
                "",
                "Machine: " + ", ".join(f"{k}={v}" for k, v in result["machine"].items()),
                "",
                f"`ImageClassifier('efficientnet_lite0', max_epochs={result['max_epochs']})`, "
                f"{result['cv']}-fold stratified CV on the 245 training photos; "
                f"search took {result['search_seconds'] / 60:.0f} min.",
                "",
                table.to_markdown(index=False, floatfmt=("", "g", ".3f", ".3f", "g", ".1f")),
                "",
                "Candidates with equal mean scores share a rank; GridSearchCV refits the first",
                "of them in grid order.",
                "",
                f"Best: {result['best_params']}; the refitted best scores "
                f"{result['val_accuracy_of_refitted_best']:.3f} on the 153 val photos.",
            ]
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
