import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import BackboneSelector, ImageEmbedder
from sktransfer.backbones import DataConfig, from_module

from .test_finetune import dark_bright


class _Blind(torch.nn.Module):
    """Features that ignore the image: a backbone that cannot transfer."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(torch.zeros_like(x))


def blind():
    return ImageEmbedder(from_module(_Blind(), name="blind", data_config=DataConfig(input_size=32)))


def test_picks_the_backbone_whose_probe_cross_validates_best():
    X, y = dark_bright(n=40)
    selector = BackboneSelector([blind(), "tiny_cnn"], cv=4).fit(X, y)
    assert selector.best_backbone_ == "tiny_cnn"
    report = selector.report_
    assert list(report["status"]) == ["scored", "best", "scored"]  # the ensemble is no better
    assert report["score"].iloc[1] > report["score"].iloc[0]
    assert list(report["backbone"]) == ["ImageEmbedder('blind')", "tiny_cnn", "ensemble of all"]
    assert (report["extract_seconds"][:2] > 0).all() and list(report["n_features"][:2]) == [4, 32]
    assert selector.score(X, y) > 0.9 and list(selector.classes_) == ["bright", "dark"]
    assert selector.predict_proba(X).shape == (40, 2) and selector.transform(X).shape == (40, 32)


class _Channel(torch.nn.Module):
    """One colour channel's mean: sees some classes and not others."""

    def __init__(self, channel):
        super().__init__()
        self.channel = channel
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x[:, self.channel : self.channel + 1].mean(dim=(2, 3)) * self.scale


def test_the_ensemble_wins_when_candidates_see_different_things():
    rng = np.random.default_rng(0)
    y = np.repeat(["red", "green", "grey"], 12)
    X = np.full((36, 16, 16, 3), 100, dtype=np.uint8)
    X[y == "red", :, :, 0] = 220  # the red channel tells red from the rest
    X[y == "green", :, :, 1] = 220  # the green channel tells green from the rest
    X = np.clip(X + rng.normal(0, 5, X.shape), 0, 255).astype(np.uint8)
    config = DataConfig(input_size=16, crop_pct=1.0)
    red, green = (
        ImageEmbedder(from_module(_Channel(c), name=n, data_config=config)) for c, n in [(0, "r"), (1, "g")]
    )
    selector = BackboneSelector([red, green], cv=3).fit(X, y)
    assert list(selector.report_["status"]) == ["scored", "scored", "best"]
    assert selector.report_["score"].iloc[2] > selector.report_["score"][:2].max() + 0.2
    assert len(selector.best_backbone_) == 2 and len(selector.embedders_) == 2
    assert selector.score(X, y) == 1.0 and selector.transform(X).shape == (36, 2)
    only_best = BackboneSelector([red, green], cv=3, ensemble=False).fit(X, y)
    assert len(only_best.embedders_) == 1 and only_best.score(X, y) < 0.8


def test_each_candidate_embeds_the_training_data_once(monkeypatch):
    X, y = dark_bright(n=24)
    calls = []
    original = ImageEmbedder.transform
    monkeypatch.setattr(ImageEmbedder, "transform", lambda self, X: calls.append(len(X)) or original(self, X))
    BackboneSelector(["tiny_cnn", blind()], cv=3).fit(X, y)
    assert calls == [24, 24]  # one pass per candidate; the folds and the ensemble reuse the features


def test_groups_reach_the_inner_splits():
    X, y = dark_bright(n=24)
    groups = np.repeat([0, 1, 2], 8)
    selector = BackboneSelector(["tiny_cnn"], cv=LeaveOneGroupOut())
    assert selector.fit(X, y, groups=groups).report_["score"].notna().all()
    with pytest.raises(ValueError, match="groups"):
        clone(selector).fit(X, y)


def test_time_budget_stops_starting_candidates():
    X, y = dark_bright(n=16)
    selector = BackboneSelector(["tiny_cnn", blind(), blind()], cv=2, time_budget=1e-9).fit(X, y)
    assert list(selector.report_["status"]) == ["best", "skipped: time budget", "skipped: time budget"]


def test_regression_uses_a_regression_probe():
    X, _ = dark_bright(n=24)
    brightness = X.mean(axis=(1, 2, 3))
    selector = BackboneSelector(["tiny_cnn"], cv=3).fit(X, brightness)
    assert not hasattr(selector, "classes_") and selector.score(X, brightness) > 0.5


def test_works_in_cross_validation_like_any_classifier():
    X, y = dark_bright(n=24)
    scores = cross_val_score(BackboneSelector(["tiny_cnn"], cv=2), X, y, cv=2)
    assert scores.shape == (2,) and np.all(scores > 0.5)


def test_presets_list_installed_bundled_backbones_cheapest_first():
    labels = [label for label, _ in BackboneSelector("image")._candidates()]
    assert labels and labels[0] == "efficientnet_lite0" and all("/" not in n for n in labels)
    assert "tiny_cnn" not in labels


def test_bad_candidates_are_named():
    X, y = dark_bright(n=8)
    with pytest.raises(InvalidParameterError, match=r"candidates\[1\]='no_such_net'"):
        BackboneSelector(["tiny_cnn", "no_such_net"]).fit(X, y)
    with pytest.raises(InvalidParameterError, match="empty"):
        BackboneSelector([]).fit(X, y)


def test_grid_search_over_backbones_embeds_each_image_once_per_backbone(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    from sktransfer.backbones import load_backbone

    X, y = dark_bright(n=24)
    rows = {"tiny": 0, "blind": 0}

    def counted(name, backbone):
        def hook(module, args, output):  # copied with the backbone, counts into ``rows``
            if len(args[0]) > 1:  # not the one-sample width probe of fit
                rows[name] += len(args[0])

        backbone.register_forward_hook(hook)
        return backbone

    tiny = counted("tiny", load_backbone("tiny_cnn"))
    blind_net = counted("blind", from_module(_Blind(), name="blind", data_config=DataConfig(input_size=32)))
    pipe = make_pipeline(ImageEmbedder(cache=tmp_path), LogisticRegression())
    search = GridSearchCV(pipe, {"imageembedder__backbone": [blind_net, tiny]}, cv=3).fit(X, y)
    assert search.best_params_["imageembedder__backbone"] is tiny
    assert rows == {"tiny": 24, "blind": 24}  # every fold, every refit: read back from the cache


def test_probes_without_probabilities_get_no_ensemble_and_no_predict_proba():
    from sklearn.svm import LinearSVC

    X, y = dark_bright(n=24)
    selector = BackboneSelector(["tiny_cnn", blind()], probe=LinearSVC(), cv=3).fit(X, y)
    assert list(selector.report_["backbone"]) == ["tiny_cnn", "ImageEmbedder('blind')"]  # no vote row
    assert not hasattr(selector, "predict_proba") and selector.decision_function(X).shape == (24,)
