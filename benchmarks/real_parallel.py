"""GridSearchCV over an embedding pipeline on the ants-vs-bees photos: one process, two
joblib workers, and a two-worker Dask ``LocalCluster``, side by side.

    python benchmarks/real_parallel.py [--cv 5] [--warm] [--dask-default]

The search: ``ImageEmbedder("efficientnet_lite0")`` + ``LogisticRegression``, pooling
{avg, max} x C {0.1, 1.0} (4 candidates), scikit-learn's default 5-fold CV over the 245
training photos, then the refit. No embedding cache, so every fit embeds its photos: the
hard case. Also measured, to show where the time goes: the start-up before the first
fit, the fits and the refit. With ``--warm``, a second two-worker search in the same
session (joblib keeps its workers, and each worker its loaded backbone); with
``--dask-default``, Dask once more with the environment it gives its workers by default.
Writes ``benchmarks/results/real-parallel-<host>.{json,md}``; 7 to 12 minutes on 2 CPU
cores.
"""

import argparse
import time

import numpy as np
from _common import ants_bees, machine, merge_results, results_path
from joblib import parallel_backend
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sktransfer import ImageEmbedder

GRID = {"imageembedder__pooling": ["avg", "max"], "logisticregression__C": [0.1, 1.0]}


def search(X, y, cv, n_jobs):
    pipe = make_pipeline(ImageEmbedder("efficientnet_lite0"), LogisticRegression(max_iter=1000))
    start = time.perf_counter()
    gs = GridSearchCV(pipe, GRID, cv=cv, n_jobs=n_jobs).fit(X, y)
    seconds = time.perf_counter() - start
    fits = float(np.sum(gs.cv_results_["mean_fit_time"] + gs.cv_results_["mean_score_time"]) * cv)
    return gs, {
        "seconds": seconds,
        "fit_and_score_seconds_summed": fits,
        "refit_seconds": gs.refit_time_,
        # What is neither a fit nor the refit: worker start-up, transfers, waiting.
        "overhead_seconds": seconds - gs.refit_time_ - fits / max(n_jobs, 1),
        "mean_test_score": gs.cv_results_["mean_test_score"].round(6).tolist(),
        "best_params": gs.best_params_,
    }


def dask_search(X, y, cv, keep_malloc_default):
    """The search on a two-worker LocalCluster. Dask starts its workers with
    MALLOC_TRIM_THRESHOLD_=65536, which makes glibc return every large block to the
    system: torch's activations then fault their pages in again on every batch, and a fit
    takes 1.5x as long. The guide's recipe (and this run, unless told otherwise) drops it."""
    import dask
    from dask.distributed import Client, LocalCluster

    environ = (
        {} if keep_malloc_default else {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    )
    start = time.perf_counter()
    with (
        dask.config.set(environ),
        LocalCluster(n_workers=2, threads_per_worker=1) as cluster,
        Client(cluster) as client,
    ):
        started = time.perf_counter() - start
        threads = sorted(client.run(torch_threads).values())
        with parallel_backend("dask"):
            gs, row = search(X, y, cv, 2)
    row["seconds"] += started
    row["overhead_seconds"] += started
    row["cluster_start_seconds"] = started
    row["torch_threads_per_worker"] = threads
    return gs, row


def torch_threads():
    import torch

    return torch.get_num_threads()


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--warm", action="store_true")
    parser.add_argument(
        "--dask-default", action="store_true", help="also run Dask with its default worker environment"
    )
    args = parser.parse_args()
    (X, y), (X_val, y_val) = ants_bees()
    rows = []

    one, row = search(X, y, args.cv, 1)
    rows.append({"run": "n_jobs=1", **row})
    print(rows[-1], flush=True)
    two, row = search(X, y, args.cv, 2)
    rows.append({"run": "n_jobs=2 (joblib's loky workers)", **row})
    print(rows[-1], flush=True)
    if args.warm:
        _, row = search(X, y, args.cv, 2)
        rows.append({"run": "n_jobs=2, second search in the same session", **row})
        print(rows[-1], flush=True)

    dask, row = dask_search(X, y, args.cv, keep_malloc_default=False)
    rows.append({"run": "Dask LocalCluster(n_workers=2), cluster start included", **row})
    print(rows[-1], flush=True)
    if args.dask_default:
        _, row = dask_search(X, y, args.cv, keep_malloc_default=True)
        rows.append({"run": "Dask, its default MALLOC_TRIM_THRESHOLD_=65536 in the workers", **row})
        print(rows[-1], flush=True)

    same = {
        r["run"]: r["mean_test_score"] == rows[0]["mean_test_score"]
        and r["best_params"] == rows[0]["best_params"]
        for r in rows
    }
    val = {
        "n_jobs=1": one.score(X_val, y_val),
        "n_jobs=2": two.score(X_val, y_val),
        "dask": dask.score(X_val, y_val),
    }
    rows = merge_results("real-parallel", rows, key=lambda r: r["run"])
    text = markdown(rows, same, val)
    results_path("real-parallel", "md").write_text(text)
    print(text)


def markdown(rows, same, val):
    base = rows[0]["seconds"]
    lines = [
        "# GridSearchCV over an embedding pipeline: one process vs two workers",
        "",
        f"Machine: {machine()}.",
        "",
        "ants vs bees, 245 training photos; `ImageEmbedder('efficientnet_lite0')` + `LogisticRegression`;",
        "pooling {avg, max} x C {0.1, 1.0}; 5-fold CV, then the refit; no embedding cache.",
        "Produced by `benchmarks/real_parallel.py`.",
        "",
        "| run | seconds | speed-up vs n_jobs=1 | fits + scores (summed s) | refit s "
        "| start-up and other s | same scores as n_jobs=1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['seconds']:.1f} | {base / r['seconds']:.2f}x | "
            f"{r['fit_and_score_seconds_summed']:.1f} | {r['refit_seconds']:.1f} | "
            f"{r['overhead_seconds']:.1f} | {same.get(r['run'], '')} |"
        )
    lines += ["", f"Refitted best model on the 153 val photos: {val}.", ""]
    dask = [r for r in rows if r["run"].startswith("Dask")]
    loky = [r for r in rows if r["run"].startswith("n_jobs=2 (")]
    if dask:
        lines.append(
            f"Dask cluster start {dask[0]['cluster_start_seconds']:.1f} s; torch threads per worker "
            f"{dask[0]['torch_threads_per_worker']}."
        )
    if dask and loky:
        lines.append(
            f"Dask (the guide's recipe) takes {dask[0]['seconds'] / loky[0]['seconds']:.2f}x the time of "
            "n_jobs=2 with joblib's own workers."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
