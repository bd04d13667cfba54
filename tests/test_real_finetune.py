"""Fine-tuning on real data (../shared/data): the default recipes must beat the linear probe.

These fits take minutes on two CPU cores, so they run when SKTRANSFER_SLOW=1 is set
(the figures committed in benchmarks/results/ come from benchmarks/real_data.py,
which runs the same recipes over several seeds). They also skip when the shared
data folder is absent.
"""

import os

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import ImageClassifier, ImageEmbedder, TextClassifier, TextEmbedder, load_image_folder

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("SKTRANSFER_SLOW") != "1", reason="minutes-long fine-tuning: set SKTRANSFER_SLOW=1"
    ),
]


def test_default_image_recipe_beats_the_probe_on_ants_vs_bees(hymenoptera):
    X_train, y_train = load_image_folder(hymenoptera / "train")
    X_val, y_val = load_image_folder(hymenoptera / "val")
    embedder = ImageEmbedder("efficientnet_lite0").fit(X_train)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    probe_accuracy = probe.fit(embedder.transform(X_train), y_train).score(embedder.transform(X_val), y_val)
    accuracy = ImageClassifier("efficientnet_lite0", random_state=0).fit(X_train, y_train).score(X_val, y_val)
    print(f"ants vs bees: fine-tuned {accuracy:.3f}, linear probe {probe_accuracy:.3f}")
    assert accuracy >= 0.95 and accuracy > probe_accuracy


def test_default_text_recipe_beats_the_probe_on_sst2(sst2):
    def read(name):
        return pd.read_csv(sst2 / f"{name}.tsv", sep="\t", quoting=3, keep_default_na=False)

    train = read("train").sample(n=2000, random_state=0)
    dev = read("dev")
    embedder = TextEmbedder("all-MiniLM-L6-v2").fit(train["sentence"])
    probe = LogisticRegression(max_iter=5000).fit(embedder.transform(train["sentence"]), train["label"])
    probe_accuracy = probe.score(embedder.transform(dev["sentence"]), dev["label"])
    model = TextClassifier("all-MiniLM-L6-v2", random_state=0).fit(train["sentence"], train["label"])
    assert model.lr_ == (1e-3, 2e-4)  # lr="auto" with 2,000 labelled texts: the faster body rate
    accuracy = model.score(dev["sentence"], dev["label"])
    print(f"SST-2 dev: fine-tuned on 2,000 {accuracy:.3f}, probe on the same 2,000 {probe_accuracy:.3f}")
    assert accuracy > probe_accuracy
