"""A fitted model as one differentiable function: model input -> class scores.

Attribution methods need gradients from the scores back to the input (or to a block).
A fine-tuned estimator already is such a network; a ``Pipeline(embedder, scaler,
linear model)`` becomes one by writing the fitted scikit-learn steps as torch
operations after the frozen backbone, so the gradient flows through both.
"""

from dataclasses import dataclass, replace

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from .._device import resolve_device
from .._pooling import pool


@dataclass
class ModelView:
    """What attribution needs of a fitted model, on one device, in float32.

    ``logits`` maps pooled backbone features to the model's scores before any squashing
    (class logits, decision values, regression outputs in the units of ``y``);
    ``activation`` turns them into probabilities (None: the model has none). Attribution
    explains logits by default: a confident model's probability is flat (its gradient
    vanishes), its logit is not (Grad-CAM is defined on the class score before softmax).
    """

    modality: str
    backbone: torch.nn.Module
    pooling: str
    logits: callable
    activation: callable
    classes: np.ndarray
    device: torch.device
    output: str = "logit"
    regressor: bool = False
    normalize: bool = False
    data_config: object = None  # images: the preprocessing
    tokenize: callable = None  # texts: texts -> token dict
    tokenizer: object = None

    def image_scores(self, x):
        """Scores for scaled float images ``(N, 3, H, W)``."""
        return self._head(pool(self.backbone(x), self.pooling, None))

    def token_scores(self, input_ids, attention_mask):
        """Scores for a token batch; a 0 in ``attention_mask`` removes that token."""
        states = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        return self._head(pool(states, self.pooling, attention_mask))

    def _head(self, pooled):
        pooled = pooled.float()
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=1)
        logits = self.logits(pooled)
        return self.activation(logits) if self.output == "probability" else logits

    def explaining(self, output):
        """This view, explaining ``output`` ("logit" or "probability")."""
        if output == "probability" and self.activation is None:
            raise ValueError(
                "attribute: output='probability' needs probabilities that are the softmax (or the "
                "logistic function) of the model's scores, as a fine-tuned classifier's or a "
                "LogisticRegression's are; this model's are not: use output='logit'."
            )
        return replace(self, output=output)

    def target_indices(self, targets, first=0):
        """Column indices of the explained outputs: ``targets`` are class labels (or, for a
        regressor, output indices), those of the inputs from number ``first`` on."""
        labels = list(self.classes)
        indices = []
        for i, target in enumerate(targets):
            if target not in labels:
                what = "an output index of the regressor" if self.regressor else "a class of the model"
                raise ValueError(
                    f"attribute: target {target!r} (input {first + i}) is not {what}; choose from "
                    f"{np.asarray(self.classes).tolist()}."
                )
            indices.append(labels.index(target))
        return indices


def model_view(model):
    """The :class:`ModelView` of a fitted sktransfer estimator or embedder pipeline."""
    if isinstance(model, Pipeline):
        return _pipeline_view(model)
    if hasattr(model, "tasks_"):
        raise ValueError(
            f"attribute: {type(model).__name__} predicts several tasks; explaining one of them is not "
            "supported yet. Fit a single-task estimator for the task to explain."
        )
    if hasattr(model, "save_weights"):  # a fine-tuning estimator (fitted or not: checked there)
        return _estimator_view(model)
    raise TypeError(
        f"attribute: cannot explain a {type(model).__name__}. Pass a fitted sktransfer estimator "
        "(ImageClassifier, TextClassifier, ...) or a fitted Pipeline that starts with an ImageEmbedder "
        "or TextEmbedder and ends with a linear classifier; for any other model, see the SHAP recipe "
        "in the explanations guide."
    )


def _estimator_view(estimator):
    check_is_fitted(estimator, "net_")
    network = estimator.net_.module_.eval()
    device = resolve_device(estimator.device)
    network.to(device)
    classifier = hasattr(estimator, "classes_")
    head = network.head
    if classifier:
        activation = torch.sigmoid if estimator.multilabel_ else _softmax
        logits = head
    else:  # a regressor's outputs in the units of y, as predict gives them
        activation = None
        scale, mean = _tensor(estimator.y_scale_, device), _tensor(estimator.y_mean_, device)

        def logits(pooled):
            return head(pooled) * scale + mean

    adapter = network.adapter
    modality = adapter.modality
    return ModelView(
        modality=modality,
        backbone=network.backbone,
        pooling=network.pooling,
        logits=logits,
        activation=activation,
        classes=estimator.classes_ if classifier else np.arange(estimator.n_targets_),
        regressor=not classifier,
        device=device,
        data_config=getattr(adapter, "data_config", None),
        tokenize=_tokenize_with(adapter) if modality == "text" else None,
        tokenizer=network.backbone.tokenizer if modality == "text" else None,
    )


def _pipeline_view(pipeline):
    embedder = pipeline.steps[0][1]
    if hasattr(embedder, "_modality"):  # an sktransfer embedder: say so if it is not fitted
        check_is_fitted(embedder, "backbone_")
    if not hasattr(embedder, "backbone_"):
        raise TypeError(
            "attribute: the pipeline's first step must be a fitted ImageEmbedder or TextEmbedder, got "
            f"{type(embedder).__name__}."
        )
    if embedder.layers_ is not None:
        raise ValueError(
            f"attribute: the embedder concatenates the blocks layers={embedder.layers!r}; attributions "
            "follow the final features only (layers=None)."
        )
    device = resolve_device(embedder.device)
    embedder.backbone_.to(device).eval()
    steps = [step for _, step in pipeline.steps[1:] if step not in (None, "passthrough")]
    if not steps:
        raise ValueError("attribute: the pipeline has no classifier after the embedder.")
    *middle, final = steps
    affine = [_scaler_as_affine(step, device) for step in middle]
    linear, classes, activation = _linear_classifier(final, device)

    def logits(pooled):
        for shift, scale in affine:
            pooled = (pooled - shift) / scale
        return linear(pooled)

    modality = embedder.backbone_.modality
    return ModelView(
        modality=modality,
        backbone=embedder.backbone_,
        pooling=embedder.pooling_,
        logits=logits,
        activation=activation,
        classes=classes,
        device=device,
        normalize=embedder.normalize_,
        data_config=getattr(embedder, "data_config_", None),
        tokenize=(lambda texts: embedder.backbone_.tokenize(texts, embedder.max_length))
        if modality == "text"
        else None,
        tokenizer=getattr(embedder.backbone_, "tokenizer", None),
    )


def _scaler_as_affine(step, device):
    if not isinstance(step, StandardScaler):
        raise ValueError(
            f"attribute: between the embedder and the classifier only StandardScaler steps can be "
            f"followed by gradients, got {type(step).__name__}; for any pipeline, see the SHAP recipe."
        )
    check_is_fitted(step)
    n = step.n_features_in_
    shift = step.mean_ if step.with_mean else np.zeros(n)
    scale = step.scale_ if step.with_std else np.ones(n)
    return _tensor(shift, device), _tensor(scale, device)


def _linear_classifier(step, device):
    check_is_fitted(step)
    if not (hasattr(step, "coef_") and hasattr(step, "intercept_") and hasattr(step, "classes_")):
        raise ValueError(
            f"attribute: the pipeline must end with a linear classifier (coef_, intercept_, classes_: "
            f"LogisticRegression, RidgeClassifier, LinearSVC ...), got {type(step).__name__}; for any "
            "model, see the SHAP recipe in the explanations guide."
        )
    weight = _tensor(np.atleast_2d(step.coef_), device)
    bias = _tensor(np.atleast_1d(step.intercept_), device)
    binary = weight.shape[0] == 1

    def linear(features):
        z = features @ weight.T + bias
        return torch.cat([-z, z], dim=1) if binary else z

    if not _is_logistic(step):
        activation = None  # decision values only (RidgeClassifier, LinearSVC...)
    elif binary:
        activation = _binary_logistic
    else:
        activation = _softmax
    return linear, step.classes_, activation


def _is_logistic(step):
    """Whether ``predict_proba`` is the logistic function of the decision values."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    return isinstance(step, (LogisticRegression, LogisticRegressionCV))


def _binary_logistic(two_columns):  # [-z, z] -> [1 - sigmoid(z), sigmoid(z)]
    p = torch.sigmoid(two_columns[:, 1:])
    return torch.cat([1 - p, p], dim=1)


def _softmax(logits):
    return torch.softmax(logits, dim=1)


def _tensor(array, device):
    return torch.as_tensor(np.asarray(array, dtype=np.float32), device=device)


def _tokenize_with(adapter):
    return lambda texts: adapter.tokenize(list(texts), adapter.max_length)
