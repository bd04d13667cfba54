"""Domain adaptation: skada's conventions, target labels never read, each method's effect."""

import pickle

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import make_pipeline
from torch import nn

from sktransfer import ImageClassifier, ImageEmbedder, ImageRegressor, TextClassifier, TextEmbedder
from sktransfer.adaptation import DomainAdaptedClassifier, encode_source_labels
from sktransfer.finetune._adaptation import ScheduledWeight, adapt_batchnorm

skada = pytest.importorskip("skada")

from tests.conftest import random_images  # noqa: E402

# skada's pipelines need metadata routing (importing skada turns it on; tests start with it off)
ROUTING_ON = pytest.mark.usefixtures("routing_on")


@pytest.fixture
def routing_on():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


TINY = dict(weights=None, batch_size=8, max_epochs=2, random_state=0)


class TargetLabelsUnreadable(list):
    """A label list that fails the test if any target row's label is read."""

    def __init__(self, values, source):
        super().__init__(values)
        self.source = source

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)) and not self.source[index]:
            raise AssertionError(f"the label of target row {index} was read")
        return super().__getitem__(index)

    def __iter__(self):
        raise AssertionError("the labels were iterated over, target rows included")


TEXTS = [f"{w} review number {i}" for i, w in enumerate(["great", "awful"] * 10)]
TEXT_LABELS = ["pos", "neg"] * 10


def image_domains(n_source=24, n_target=16):
    """Two classes of tiny images; the target is darker (a covariate shift)."""
    X = random_images(n_source + n_target, size=(32, 32), seed=1)
    y = np.array(["mug", "bike"] * ((n_source + n_target) // 2), dtype=object)
    X[y == "mug", :16] //= 3  # a class signal: a dark top half
    X[n_source:] //= 2
    domains = np.r_[np.ones(n_source, int), -np.ones(n_target, int)]
    return X, y, domains


def blobs(shift=4.0, n=200, seed=0):
    """Two Gaussian classes; the target is the source rotated and moved."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=2 * n)
    X = rng.normal(size=(2 * n, 5)) + 3.0 * y[:, None] * np.array([1, 0, 0, 0, 0])
    X[n:] = X[n:] * np.array([1.5, 0.5, 1, 1, 1]) + shift
    labels = np.where(y == 1, "pos", "neg").astype(object)
    domains = np.r_[np.ones(n, int), -np.ones(n, int)]
    return X, labels, domains


# ----------------------------------------------------------- the fine-tuning estimators
@pytest.mark.parametrize(
    "adaptation, freeze",
    [
        ("dann", "last:1"),
        ("coral", "last:1"),
        ("mmd", "last:1"),
        ("pseudo_label", "backbone"),
        ("mcc", "backbone"),
    ],
)
def test_each_loss_term_is_in_history(adaptation, freeze):
    X, y, domains = image_domains()
    clf = ImageClassifier("tiny_cnn", freeze=freeze, adaptation=adaptation, **TINY)
    clf.fit(X, y, sample_domain=domains)
    keys = {k for batch in clf.net_.history[-1]["batches"] for k in batch}
    assert f"train_{adaptation}_loss" in keys
    values = clf.net_.history[:, "batches", :, f"train_{adaptation}_loss"]
    assert all(np.isfinite(v) for epoch in values for v in epoch)
    assert set(clf.predict(X)) <= {"mug", "bike"}


def test_target_labels_are_never_read():
    X, y, domains = image_domains()
    source = domains > 0
    unreadable = TargetLabelsUnreadable(list(y), source)
    clf = ImageClassifier("tiny_cnn", freeze="last:1", adaptation=["dann", "pseudo_label"], **TINY)
    clf.fit(X, unreadable, sample_domain=domains)
    other = np.where(source, y, "bike")  # any placeholder gives the same model
    same = clone(clf).fit(X, other, sample_domain=domains)
    np.testing.assert_allclose(clf.predict_proba(X), same.predict_proba(X), atol=1e-6)
    assert list(clf.classes_) == ["bike", "mug"]


def test_skada_mask_mixed_with_string_labels():
    X, y, domains = image_domains()
    masked = np.where(domains > 0, y, -1).astype(object)  # skada's -1 beside "mug"
    clf = ImageClassifier("tiny_cnn", freeze="backbone", adaptation="pseudo_label", **TINY)
    clf.fit(X, masked, sample_domain=domains)
    assert list(clf.classes_) == ["bike", "mug"]


def test_integer_labels_beside_none_placeholders():
    X, y, domains = image_domains()
    codes = np.where(domains > 0, (y == "mug").astype(int), None)  # an object array
    clf = ImageClassifier("tiny_cnn", freeze="backbone", adaptation="pseudo_label", **TINY)
    clf.fit(X, codes, sample_domain=domains)
    assert clf.classes_.tolist() == [0, 1]


def test_no_adaptation_equals_a_fit_on_the_source_rows():
    X, y, domains = image_domains()
    source = domains > 0
    with_target = ImageClassifier("tiny_cnn", freeze="last:1", **TINY).fit(X, y, sample_domain=domains)
    alone = ImageClassifier("tiny_cnn", freeze="last:1", **TINY).fit(X[source], y[source])
    np.testing.assert_allclose(with_target.predict_proba(X), alone.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize(
    "domains, message",
    [
        (np.ones(39, int), "one domain per sample"),
        (np.ones(40, int), "no target row"),
        (-np.ones(40, int), "no source row"),
        (np.r_[np.zeros(1, int), np.ones(23, int), -np.ones(16, int)], r"sample_domain\[0\] is 0"),
        (np.r_[np.full(24, 1.5), -np.ones(16)], "integers"),
    ],
)
def test_bad_sample_domain_is_named(domains, message):
    X, y, _ = image_domains()
    clf = ImageClassifier("tiny_cnn", freeze="backbone", adaptation="pseudo_label", **TINY)
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y, sample_domain=domains)
    with pytest.raises(ValueError, match=message):
        DomainAdaptedClassifier().fit(np.zeros((40, 3)), y, sample_domain=domains)


@pytest.mark.parametrize(
    "estimator, message",
    [
        (ImageClassifier("tiny_cnn", freeze="backbone", adaptation="coral", **TINY), "no backbone parameter"),
        (ImageClassifier("tiny_cnn", adaptation="nope", **TINY), "adaptation='nope' is not one of"),
        (ImageClassifier("tiny_cnn", adaptation=["dann", "dann"], **TINY), "names a method twice"),
        (ImageRegressor("tiny_cnn", adaptation="pseudo_label", **TINY), "a regressor has none"),
        (ImageRegressor("tiny_cnn", adaptation=["adabn", "mcc"], **TINY), "'mcc' needs class labels"),
    ],
)
def test_bad_adaptation_is_named(estimator, message):
    X, y, domains = image_domains()
    if isinstance(estimator, ImageRegressor):
        y = np.arange(len(y), dtype=float)
    with pytest.raises(ValueError, match=message):
        estimator.fit(X, y, sample_domain=domains)


def test_logit_adaptations_need_one_class_a_row():
    X, _, domains = image_domains()
    multilabel = np.eye(2, dtype=int)[np.arange(len(X)) % 2]
    clf = ImageClassifier("tiny_cnn", freeze="backbone", adaptation=["mcc", "pseudo_label"], **TINY)
    with pytest.raises(ValueError, match="adaptation='mcc' needs one class per row"):
        clf.fit(X, multilabel, sample_domain=domains)


def test_mcc_penalises_confused_target_predictions_only():
    from sktransfer.finetune._adaptation import MCCLoss

    domains = torch.tensor([1, 1, -1, -1, -1, -1])
    clear = torch.tensor([[9.0, -9.0, -9.0], [-9.0, 9.0, -9.0], [-9.0, -9.0, 9.0]] * 2)
    confused = clear.clone()
    confused[2:] = 0.0  # the target rows: every class equally likely
    loss = MCCLoss()
    assert loss(clear, None, {"domain": domains}) < 0.01
    assert loss(confused, None, {"domain": domains}) > 0.5
    source_confused = confused.clone()
    source_confused[2:] = clear[2:]  # only the source rows confused: not the target's problem
    assert loss(source_confused, None, {"domain": domains}) < 0.01
    assert loss(clear, None, {"domain": torch.tensor([1, 1, 1, 1, 1, -1])}) == 0.0  # one target row


def test_adaptation_needs_the_target_rows():
    X, y, _ = image_domains()
    with pytest.raises(ValueError, match="needs unlabelled target rows"):
        ImageClassifier("tiny_cnn", adaptation="dann", **TINY).fit(X, y)


def test_adabn_needs_batchnorm():
    texts = ["good", "bad", "fine", "awful"] * 4
    y = ["pos", "neg"] * 8
    domains = np.r_[np.ones(10, int), -np.ones(6, int)]
    clf = TextClassifier("tiny_text", adaptation="adabn", **TINY)
    with pytest.raises(ValueError, match="no BatchNorm layer"):
        clf.fit(texts, y, sample_domain=domains)


def test_text_classifier_adapts_with_mmd():
    domains = np.r_[np.ones(12, int), -np.ones(8, int)]
    clf = TextClassifier("tiny_text", freeze="none", adaptation="mmd", **TINY)
    clf.fit(TEXTS, TEXT_LABELS, sample_domain=domains)
    assert "train_mmd_loss" in clf.net_.history[-1]["batches"][0]


def test_adabn_network_keeps_the_target_statistics():
    X, y, domains = image_domains()
    target = domains < 0
    adapted = ImageClassifier("tiny_cnn", freeze="backbone", adaptation="adabn", **TINY)
    adapted.fit(X, y, sample_domain=domains)
    by_hand = ImageClassifier("tiny_cnn", freeze="backbone", **TINY).fit(X[~target], y[~target])
    by_hand._adapt_batchnorm(by_hand.net_.module_, X[target])
    layers = [m for m in adapted.net_.module_.modules() if isinstance(m, nn.BatchNorm2d)]
    expected = [m for m in by_hand.net_.module_.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(layers) == 3
    for layer, reference in zip(layers, expected):
        torch.testing.assert_close(layer.running_mean, reference.running_mean)
        torch.testing.assert_close(layer.running_var, reference.running_var)
    pretrained = ImageClassifier("tiny_cnn", freeze="backbone", **TINY).fit(X, y)
    assert not np.allclose(adapted.transform(X[target]), pretrained.transform(X[target]))


def test_adapt_batchnorm_is_the_target_average():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.BatchNorm1d(3))

        def features(self, x):
            return self.backbone(x)

    net = Net()
    batches = [torch.randn(8, 3) * 2 + 5, torch.randn(8, 3) * 2 + 5]
    adapt_batchnorm(net, batches)
    bn = net.backbone[0]
    expected = torch.stack([b.mean(0) for b in batches]).mean(0)
    torch.testing.assert_close(bn.running_mean, expected)
    assert bn.momentum == 0.1 and not bn.training


def test_warmup_weight_goes_from_zero_to_the_weight():
    weight = ScheduledWeight(2.0)
    assert weight(0.0) == 0.0
    assert 1.9 < weight(1.0) <= 2.0
    assert weight(0.1) < weight(0.3) < weight(0.6)


def test_dann_discriminator_trains_with_the_head():
    X, y, domains = image_domains()
    clf = ImageClassifier("tiny_cnn", freeze="last:1", adaptation="dann", **TINY)
    clf.fit(X, y, sample_domain=domains)
    discriminator = clf.net_.module_.aux["domain_discriminator"]
    head_group = next(g for g in clf.net_.optimizer_.param_groups if g["name"] == "head")
    assert {id(p) for p in discriminator.parameters()} <= {id(p) for p in head_group["params"]}
    assert clf.net_.steps_done_ == 2 * int(np.ceil(40 / 8))


@pytest.mark.parametrize("adaptation", [["adabn", "dann"], ["adabn", "pseudo_label"]])
def test_adapted_estimator_pickles_clones_and_continues(adaptation, tmp_path):
    X, y, domains = image_domains()
    clf = ImageClassifier("tiny_cnn", freeze="last:1", adaptation=adaptation, **TINY)
    clf.fit(X, y, sample_domain=domains)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert clone(clf).get_params()["adaptation"] == adaptation
    clf.partial_fit(X, y, sample_domain=domains)  # one more adapted epoch
    assert clf.n_epochs_ == 3
    clf.save_weights(tmp_path / "w.safetensors")  # the discriminator is training-only
    plain = ImageClassifier("tiny_cnn", freeze="last:1", **TINY).fit(X, y)
    plain.load_weights(tmp_path / "w.safetensors")
    np.testing.assert_allclose(plain.decision_function(X[:4]), clf.decision_function(X[:4]), atol=1e-5)


def test_dann_adds_nothing_on_one_domain_batches():
    from sktransfer.finetune._adaptation import DANNLoss

    X, y, domains = image_domains()
    clf = ImageClassifier("tiny_cnn", freeze="last:1", adaptation="dann", **TINY)
    clf.fit(X, y, sample_domain=domains)
    features = torch.randn(6, 32)
    loss = DANNLoss(clf.net_.module_)(None, features, {"domain": torch.ones(6)})
    assert loss.item() == 0.0


def test_gridsearch_with_a_label_free_scorer():
    """skada's recipe: choose ``adaptation`` without target labels, 'none' among them."""
    from skada.metrics import PredictionEntropyScorer
    from skada.model_selection import SourceTargetShuffleSplit
    from sklearn.model_selection import GridSearchCV

    X, y, domains = image_domains()
    with sklearn.config_context(enable_metadata_routing=True):
        clf = ImageClassifier("tiny_cnn", freeze="backbone", **TINY).set_fit_request(sample_domain=True)
        search = GridSearchCV(
            clf,
            {"adaptation": ["none", "pseudo_label"]},
            scoring=PredictionEntropyScorer(),
            cv=SourceTargetShuffleSplit(n_splits=2, random_state=0),
        )
        codes, classes = encode_source_labels(y, domains)  # skada's scorers need numbers
        search.fit(X, codes, sample_domain=domains)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert list(classes) == ["bike", "mug"] and set(search.predict(X)) <= {0, 1}
    assert search.best_params_["adaptation"] in ("none", "pseudo_label")


# ------------------------------------------------------------ frozen features + skada
@pytest.mark.parametrize("routing", [True, False])
def test_sktransfer_works_with_routing_on_and_off(routing):
    """Importing skada turns metadata routing on for the whole process."""
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X, y, domains = image_domains()
    with sklearn.config_context(enable_metadata_routing=routing):
        pipe = make_pipeline(ImageEmbedder("tiny_cnn", weights=None), LogisticRegression(max_iter=500))
        assert pipe.fit(X, y).score(X, y) > 0.5
        search = GridSearchCV(
            ImageClassifier("tiny_cnn", freeze="backbone", **TINY), {"lr": [1e-3, 1e-2]}, cv=2
        )
        assert search.fit(X, y).best_params_["lr"] in (1e-3, 1e-2)
        assert cross_val_score(TextClassifier("tiny_text", **TINY), TEXTS, TEXT_LABELS, cv=2).shape == (2,)
        features, labels, feature_domains = blobs()
        adapted = DomainAdaptedClassifier(adaptation=skada.CORALAdapter(reg=1.0))
        adapted.fit(features, labels, sample_domain=feature_domains)
        assert adapted.score(features[feature_domains < 0], labels[feature_domains < 0]) > 0.5


@ROUTING_ON
def test_image_embedder_first_in_make_da_pipeline():
    from skada import CORALAdapter, make_da_pipeline

    X, y, domains = image_domains()
    codes, classes = encode_source_labels(y, domains)
    pipe = make_da_pipeline(
        ImageEmbedder("tiny_cnn", weights=None), CORALAdapter(reg=1.0), LogisticRegression(max_iter=500)
    )
    pipe.fit(X, codes, sample_domain=domains)
    assert set(classes[pipe.predict(X[domains < 0], sample_domain=domains[domains < 0])]) <= {"mug", "bike"}


@ROUTING_ON
def test_text_embedder_first_in_make_da_pipeline():
    from skada import SubspaceAlignmentAdapter, make_da_pipeline

    texts = [f"{w} film {i}" for i, w in enumerate(["great", "awful"] * 10)]
    codes = np.r_[np.tile([1, 0], 6), -np.ones(8, int)]
    domains = np.r_[np.ones(12, int), -np.ones(8, int)]
    pipe = make_da_pipeline(
        TextEmbedder("tiny_text", weights=None),
        SubspaceAlignmentAdapter(n_components=4),
        LogisticRegression(),
    )
    pipe.fit(texts, codes, sample_domain=domains)
    assert set(pipe.predict(texts[12:], sample_domain=domains[12:])) <= {0, 1}


# --------------------------------------------------------------- DomainAdaptedClassifier
@pytest.mark.parametrize("adaptation", ["center", "self_training", "auto"])
def test_adaptation_beats_source_only_on_a_shift(adaptation):
    X, y, domains = blobs()
    target = domains < 0
    source_only = DomainAdaptedClassifier(adaptation="none").fit(X, y, sample_domain=domains)
    adapted = DomainAdaptedClassifier(adaptation=adaptation).fit(X, y, sample_domain=domains)
    assert source_only.score(X[target], y[target]) < 0.7
    assert adapted.score(X[target], y[target]) > 0.9
    assert adapted.report_["adaptation"] == adaptation


def test_classifier_never_reads_target_labels_and_keeps_string_classes():
    X, y, domains = blobs()
    unreadable = TargetLabelsUnreadable(list(y), domains > 0)
    clf = DomainAdaptedClassifier().fit(X, unreadable, sample_domain=domains)
    assert list(clf.classes_) == ["neg", "pos"]
    assert set(clf.predict(X[domains < 0])) <= {"neg", "pos"}
    assert {"cluster_agreement", "refined", "changed_vs_source_only"} <= set(clf.report_.index)


def test_skada_adapter_gets_encoded_labels():
    from skada import CORALAdapter

    X, y, domains = blobs()
    clf = DomainAdaptedClassifier(adaptation=CORALAdapter(reg=1.0)).fit(X, y, sample_domain=domains)
    assert set(clf.predict(X[domains < 0])) <= {"neg", "pos"}


def test_nan_from_an_adapter_is_an_error():
    from skada.base import BaseAdapter

    class Broken(BaseAdapter):
        def fit_transform(self, X, y=None, *, sample_domain=None, **params):
            self.fitted_ = True
            out = np.array(X, dtype=float)
            out[3, 0] = np.nan
            return out

    X, y, domains = blobs()
    with pytest.raises(ValueError, match=r"adaptation=Broken\(\) turned the features of 1 rows"):
        DomainAdaptedClassifier(adaptation=Broken()).fit(X, y, sample_domain=domains)


def test_classifier_errors_name_the_culprit():
    X, y, domains = blobs()
    with pytest.raises(ValueError, match="takes no sample_weight"):
        DomainAdaptedClassifier(classifier=make_pipeline(LogisticRegression())).fit(
            X, y, sample_domain=domains
        )
    with pytest.raises(ValueError, match="needs sample_domain"):
        DomainAdaptedClassifier().fit(X, y)
    with pytest.raises(ValueError, match="one class"):
        DomainAdaptedClassifier().fit(X, np.where(domains > 0, "pos", None), sample_domain=domains)
    two_targets = np.where(domains > 0, 1, np.where(np.arange(len(X)) % 2, -1, -2))
    clf = DomainAdaptedClassifier().fit(X, y, sample_domain=two_targets)
    with pytest.raises(ValueError, match="pass sample_domain"):
        clf.predict(X[:5])
    assert clf.predict(X[:5], sample_domain=[-1] * 5).shape == (5,)


def test_classifier_with_an_embedder_end_to_end():
    X, y, domains = image_domains()
    clf = DomainAdaptedClassifier(ImageEmbedder("tiny_cnn", weights=None)).fit(X, y, sample_domain=domains)
    assert clf.predict(X[domains < 0]).shape == (16,)
    assert pickle.loads(pickle.dumps(clf)).predict(X[:3]).tolist() == clf.predict(X[:3]).tolist()


# ---------------------------------------------------------------- unsupervised transfer
def test_fine_tuned_features_cluster():
    X, y, domains = image_domains()
    clf = ImageClassifier("tiny_cnn", freeze="none", **{**TINY, "max_epochs": 5}).fit(X, y)
    features = clf.transform(X)
    assert features.shape == (40, 32) and features.dtype == np.float32
    with torch.no_grad():  # the features are what the head sees
        logits = clf.net_.module_.head(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], clf.decision_function(X), atol=1e-4)
    labels = KMeans(2, n_init=10, random_state=0).fit_predict(features)
    assert np.isfinite(adjusted_rand_score(y, labels)) and len(set(labels)) == 2


def test_pandas_labels_with_placeholders():
    import pandas as pd

    X, y, domains = image_domains()
    codes = pd.Series(np.where(domains > 0, (y == "mug").astype(int), None), index=np.arange(40) + 100)
    clf = ImageClassifier("tiny_cnn", freeze="backbone", adaptation="pseudo_label", **TINY)
    assert clf.fit(X, codes, sample_domain=domains).classes_.tolist() == [0, 1]
    assert encode_source_labels(codes, domains)[1].tolist() == [0, 1]


def test_encode_source_labels_masks_the_target():
    y = ["mug", "bike", "whatever", None]
    codes, classes = encode_source_labels(y, [1, 1, -1, -1])
    assert codes.tolist() == [1, 0, -1, -1] and classes.tolist() == ["bike", "mug"]
