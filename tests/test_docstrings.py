"""Every public estimator documents its parameters in its signature's order (numpydoc)."""

import inspect
import re

import pytest

from sktransfer import (
    BackboneSelector,
    DomainAdaptedClassifier,
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
from sktransfer.backbones import from_module, register_backbone

ESTIMATORS = [
    ImageEmbedder,
    TextEmbedder,
    ImageClassifier,
    ImageRegressor,
    TextClassifier,
    TextRegressor,
    ImageMultiTask,
    TextMultiTask,
    BackboneSelector,
    ZeroShotImageClassifier,
    ZeroShotTextClassifier,
    DomainAdaptedClassifier,
    SelfTrainedHead,
]


def documented(obj, section="Parameters"):
    """Names in a numpydoc section (``a, b : type`` documents a and b)."""
    doc = inspect.getdoc(obj)
    match = re.search(rf"^{section}\n-+\n(.*?)(?:\n\n[A-Z][a-z]+\n-+\n|\Z)", doc, re.S | re.M)
    assert match, f"{obj.__name__} has no {section} section"
    names = []
    for line in match.group(1).splitlines():
        if line and not line.startswith(" "):
            names += [n.strip() for n in line.split(" : ")[0].split(",")]
    return names


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.__name__)
def test_parameters_documented_in_signature_order(estimator):
    signature = list(inspect.signature(estimator.__init__).parameters)[1:]
    assert documented(estimator) == signature


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.__name__)
def test_fitted_attributes_are_documented(estimator, request):
    attributes = documented(estimator, "Attributes")
    assert attributes and all(name.endswith("_") for name in attributes)


@pytest.mark.parametrize("function", [register_backbone, from_module], ids=lambda f: f.__name__)
def test_public_helpers_have_numpydoc(function):
    signature = [
        name
        for name, p in inspect.signature(function).parameters.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    assert documented(function) == signature
    assert "Returns" in inspect.getdoc(function) or function is register_backbone
