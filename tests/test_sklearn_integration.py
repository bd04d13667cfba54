"""The embedders inside Pipeline, ColumnTransformer, cross-validation and grid search."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import ImageEmbedder, TextEmbedder


@pytest.fixture
def separable_images(tmp_path):
    """Dark vs bright images on disk: any reasonable feature separates them."""
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(24):
        label = i % 2
        base = 40 if label == 0 else 210
        array = np.clip(rng.normal(base, 20, size=(36, 36, 3)), 0, 255).astype(np.uint8)
        path = tmp_path / f"{i}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
        labels.append(["dark", "bright"][label])
    return np.array(paths), np.array(labels)


def test_pipeline_learns_from_image_features(separable_images):
    X, y = separable_images
    model = make_pipeline(ImageEmbedder("tiny_cnn"), StandardScaler(), LogisticRegression())
    assert model.fit(X[:16], y[:16]).score(X[16:], y[16:]) == 1.0


def test_cross_val_score(separable_images):
    X, y = separable_images
    model = make_pipeline(ImageEmbedder("tiny_cnn"), LogisticRegression())
    scores = cross_val_score(model, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.9


def test_grid_search_over_pooling_and_downstream_parameter(separable_images):
    X, y = separable_images
    model = make_pipeline(ImageEmbedder("tiny_cnn"), LogisticRegression())
    grid = {"imageembedder__pooling": ["avg", "max"], "logisticregression__C": [0.1, 1.0]}
    search = GridSearchCV(model, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["imageembedder__pooling"] in ("avg", "max")
    assert search.best_estimator_[0].pooling_ == search.best_params_["imageembedder__pooling"]


def test_column_transformer_with_image_text_and_numeric_columns(separable_images):
    paths, y = separable_images
    frame = pd.DataFrame(
        {
            "photo": paths,
            "review": ["great product" if label == "bright" else "awful, broke" for label in y],
            "price": np.linspace(1, 2, len(y)),
        }
    )
    features = ColumnTransformer(
        [
            ("image", ImageEmbedder("tiny_cnn"), "photo"),
            ("text", TextEmbedder("tiny_text"), "review"),
            ("numeric", StandardScaler(), ["price"]),
        ]
    )
    model = make_pipeline(features, LogisticRegression(max_iter=1000))
    model.fit(frame.iloc[:16], y[:16])
    assert model.score(frame.iloc[16:], y[16:]) == 1.0
    assert model[0].transform(frame).shape == (24, 32 + 16 + 1)
    names = model[0].get_feature_names_out()
    assert names[0] == "image__imageembedder0" and names[-1] == "numeric__price"
