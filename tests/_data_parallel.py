"""Run by tests/test_parallel.py under torch.distributed.run with two CPU processes: one
data-parallel fit through Accelerate; each process writes what it ended with."""

import json
import sys

import numpy as np
from accelerate import Accelerator

from sktransfer import ImageClassifier

out = sys.argv[1]
rng = np.random.default_rng(0)
X = rng.integers(0, 255, (32, 32, 32, 3), dtype=np.uint8)
y = np.arange(32) % 2
X[y == 1] //= 3  # dark or bright: learnable in a few steps
accelerator = Accelerator(cpu=True)
kwargs = dict(weights=None, freeze="none", max_epochs=3, batch_size=4, random_state=0)
clf = ImageClassifier("tiny_cnn", accelerator=accelerator, **kwargs).fit(X, y)
try:
    ImageClassifier("tiny_cnn", accelerator=accelerator, early_stopping=True, **kwargs).fit(X, y)
    refused = ""
except ValueError as exc:
    refused = str(exc)
rank = accelerator.process_index
np.save(f"{out}/proba{rank}.npy", clf.predict_proba(X))
with open(f"{out}/run{rank}.json", "w") as file:
    json.dump(
        {"processes": accelerator.num_processes, "steps": clf.net_.steps_done_, "refused": refused}, file
    )
