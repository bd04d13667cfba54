"""What the benchmark scripts share: where the data and results live, the machine, the photos."""

import os
import platform
from pathlib import Path

import torch

from sktransfer import load_image_folder

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SKTRANSFER_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"
# The text estimators' recipe until 2026-12-01 (the default is now lr="auto": 2e-4 for the
# body from 1,000 labelled texts, 5e-5 below):
# the benchmarks whose committed rows were measured with it pass it, so they reproduce.
FORMER_TEXT_RECIPE = dict(freeze="none", lr=(1e-3, 5e-5))


def machine(device="cpu"):
    """The machine a result was measured on, for the results files."""
    device = torch.device(device)
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    info = {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def ants_bees():
    """The ants-vs-bees photos: ``(X_train, y_train), (X_val, y_val)`` as file paths and labels."""
    root = DATA / "hymenoptera_data"
    return load_image_folder(root / "train"), load_image_folder(root / "val")


def chest_xray_split(seed):
    """The chest X-rays split 50/50 by patient (the first fold of ``StratifiedGroupKFold(2)``,
    shuffled with ``seed``): ``X, y, groups, train, test``, no patient on both sides."""
    import re

    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    X, y = load_image_folder(DATA / "chest_xray_pneumonia")
    # The patient is in the file name (see the data README).
    groups = np.array([re.match(r"^((?:NORMAL2-)?IM-\d+|person\d+)", Path(p).name).group(1) for p in X])
    train, test = next(StratifiedGroupKFold(2, shuffle=True, random_state=seed).split(X, y, groups))
    assert not set(groups[train]) & set(groups[test])
    return X, y, groups, train, test


def auto_choice(model):
    """The candidate a ``freeze="auto"`` fit chose, from its ``auto_report_``."""
    report = model.auto_report_
    return report.loc[report["chosen"], "candidate"].iloc[0]


def adaptation_arg(name):
    """An ``adaptation`` from the command line: ``"a+b"`` combines methods into a list."""
    return name.split("+") if "+" in name else name


def results_path(name, suffix):
    """``results/<name>-<host>.<suffix>``; ``<name>-cuda-<host>`` where a GPU does the work,
    so that a GPU machine with this one's host name never merges into its files."""
    device = "cuda-" if torch.cuda.is_available() else ""
    return RESULTS / f"{name}-{device}{machine()['host']}.{suffix}"


def merge_results(name, rows, key):
    """Write ``rows`` into ``results_path(name, "json")``, replacing earlier rows with the same
    ``key(row)`` and keeping the others; return all rows."""
    import json

    path = results_path(name, "json")
    new = {key(r) for r in rows}
    earlier = json.loads(path.read_text())["rows"] if path.exists() else []
    rows = [r for r in earlier if key(r) not in new] + rows
    path.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1, default=str))
    return rows
