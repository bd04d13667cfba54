"""scikit-learn's estimator checks over every public estimator.

Images and texts are not 2-D float arrays, so for an image or text backbone
``parametrize_with_checks`` would silently skip every check (the estimators
truthfully declare ``two_d_array=False``). Two measures keep the checks honest:

1. each embedder also runs the full check suite on the vector modality of
   ``tests/_vector.py`` (the ``tiny_vector_mlp`` backbone and its adapter), which
   takes 2-D numeric arrays and goes through the same ``fit``, batching, pooling,
   pickling and ``set_output`` code;
2. the checks that only need the API (parameters, cloning, repr, tags, parameter
   validation) run one by one on the real image and text configurations, and on
   ``SelfTrainedHead`` (whose fitted model a clone would copy unfitted).

The only check left out of the one-by-one list, and why, is noted beside it.
"""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks as checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from sktransfer import (
    BackboneSelector,
    ImageClassifier,
    ImageEmbedder,
    ImageMultiTask,
    ImageRegressor,
    SelfTrainedHead,
    TextClassifier,
    TextEmbedder,
    TextMultiTask,
    TextRegressor,
    ZeroShotImageClassifier,
    ZeroShotTextClassifier,
)

from ._vector import VectorImageEmbedder, VectorTextEmbedder  # noqa: E402

VECTOR_ESTIMATORS = [VectorImageEmbedder("tiny_vector_mlp"), VectorTextEmbedder("tiny_vector_mlp")]


# Every check passes on the vector configuration: no expected failures to list.
@parametrize_with_checks(VECTOR_ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


API_CHECKS = [
    checks.check_no_attributes_set_in_init,
    checks.check_parameters_default_constructible,
    checks.check_get_params_invariance,
    checks.check_set_params,
    checks.check_estimator_cloneable,
    checks.check_estimator_repr,
    checks.check_do_not_raise_errors_in_init_or_set_params,
    checks.check_estimator_tags_renamed,
]

# check_param_validation feeds 2-D float arrays to fit, which image and text backbones
# reject by design (with an InvalidInputError); it runs above on the vector backbone.
# The fine-tuning estimators take images or texts only: every data-level check of
# scikit-learn feeds 2-D float arrays, so only the API checks apply to them; their
# fitting behaviour (classes_, predict_proba, clone, pickling, grid search, bad input)
# is tested on images and texts in test_finetune.py.
MODAL_ESTIMATORS = [
    ImageEmbedder("tiny_cnn"),
    TextEmbedder("tiny_text"),
    ImageClassifier("tiny_cnn"),
    ImageRegressor("tiny_cnn"),
    TextClassifier("tiny_text"),
    TextRegressor("tiny_text"),
    ImageMultiTask("tiny_cnn"),
    TextMultiTask("tiny_text"),
    BackboneSelector(["tiny_cnn"]),
    ZeroShotTextClassifier("tiny_text", labels=["a", "b"]),
    ZeroShotImageClassifier(labels=["a", "b"]),
]


@pytest.mark.parametrize("estimator", MODAL_ESTIMATORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
def test_api_checks_on_image_and_text_configurations(estimator, check):
    check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
def test_api_checks_on_self_trained_head(check):
    # Its data checks clone it, which copies the fitted model unfitted: they do not apply.
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    check("SelfTrainedHead", SelfTrainedHead(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)))


@pytest.mark.parametrize("estimator", MODAL_ESTIMATORS, ids=lambda e: type(e).__name__)
def test_tags_tell_the_truth(estimator):
    tags = estimator.__sklearn_tags__()
    assert tags.input_tags.two_d_array is False
    assert tags.input_tags.string is ("Text" in type(estimator).__name__)
    assert all(e.__sklearn_tags__().input_tags.two_d_array for e in VECTOR_ESTIMATORS)
