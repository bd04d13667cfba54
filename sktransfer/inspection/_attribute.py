"""attribute(): which pixels or tokens made a fitted model say what it said."""

from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .._validation import check_option
from ..data import ImageDataset, eval_transform, image_inputs, scale_pixels, text_inputs
from ..exceptions import MissingDependencyError
from ._geometry import to_original
from ._render import TokenAttributionDisplay
from ._views import model_view

IMAGE_METHODS = ("gradcam", "hirescam", "integrated_gradients")
CAM_METHODS = ("gradcam", "hirescam")  # class activation maps on blocks' feature maps
TEXT_METHODS = ("integrated_gradients", "occlusion")


@dataclass
class TokenAttribution(TokenAttributionDisplay):
    """One text's attribution: its tokens (as the model's tokenizer cut them, special tokens
    left out) and a score per token (positive: evidence for the explained class)."""

    text: str
    tokens: list
    scores: np.ndarray
    target: object


def attribute(
    model,
    X,
    method="integrated_gradients",
    *,
    target=None,
    output="logit",
    layer=None,
    n_steps=32,
    batch_size=8,
    verbose=0,
):
    """Attribute a fitted model's outputs to its inputs' pixels or tokens.

    Parameters
    ----------
    model : fitted estimator or Pipeline
        An ``ImageClassifier``, ``ImageRegressor``, ``TextClassifier`` or ``TextRegressor``,
        or a ``Pipeline`` that starts with a fitted ``ImageEmbedder`` / ``TextEmbedder``,
        may standardise (``StandardScaler``) and ends with a linear classifier
        (``LogisticRegression``...): the gradient flows through the frozen backbone into
        the linear model.
    X : images or texts
        What the model predicts on.
    method : str, default="integrated_gradients"
        Images: ``"gradcam"`` (Grad-CAM on a block's feature maps; CNNs),
        ``"hirescam"`` (HiResCAM: as Grad-CAM, but gradients times activations summed
        position by position instead of channel-averaged gradients, so the map keeps
        where each channel matters; on ants vs bees, the more faithful of the two in the
        deletion test) or
        ``"integrated_gradients"`` (any backbone; from the mean image, the backbone's
        neutral input). Texts: ``"integrated_gradients"`` (on the token embeddings, from
        padding tokens) or ``"occlusion"`` (the drop of the score when a token is removed).
    target : class label, array-like of labels, or None, default=None
        The class explained for each input; None: the predicted class. Regressors: the
        output's index (None: the first output).
    output : {"logit", "probability"}, default="logit"
        What is explained: the class's score before softmax (decision value; for a
        regressor its prediction in the units of ``y``), or its probability. A
        confident model's probability barely moves with its input, so its gradients
        vanish: explain logits unless you need probabilities.
    layer : str, int, list of them, or None, default=None
        Grad-CAM's (or HiResCAM's) block (a name from ``backbone.block_names()``, or its
        index), or several blocks: the geometric mean of their maps, each scaled to a
        maximum of 1. None: the last block at each of the backbone's two coarsest resolutions (for
        EfficientNet-Lite0, ``["blocks.4", "head"]``, at 1/16 and 1/32 of the input),
        finer than the last block alone and more faithful in the deletion test (see the
        explanations guide). :func:`choose_cam_layers` chooses them for your model by
        that test, on images you pass.
    n_steps : int, default=32
        Integrated-gradients steps along the path from the baseline.
    batch_size : int, default=8
        Inputs (or integration steps) per forward pass.
    verbose : int, default=0
        1 shows a progress bar over the inputs (integrated gradients on a CPU take
        seconds per image).

    Returns
    -------
    list
        Images: one float32 array ``(H, W)`` per input at the input's own size (zero
        outside the centre crop the network sees), to lay over the picture
        (``plot_image_attribution``). Texts: one :class:`TokenAttribution` per input
        (``.plot()``, ``.to_html()``).
    """
    try:
        import captum.attr  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "attribute needs captum. Install it with: pip install 'sktransfer[explain]'"
        ) from None
    if not isinstance(n_steps, Integral) or n_steps < 1:
        raise ValueError(f"attribute: n_steps={n_steps!r} must be a positive integer.")
    if not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"attribute: batch_size={batch_size!r} must be a positive integer.")
    check_option("attribute", "output", output, ("logit", "probability"))
    view = model_view(model).explaining(output)
    if layer is not None and method not in CAM_METHODS:
        raise ValueError(
            f"attribute: layer={layer!r} chooses Grad-CAM's or HiResCAM's block; "
            f"method={method!r} takes none."
        )
    if view.modality == "image":
        check_option("attribute", "method", method, IMAGE_METHODS)
        return _attribute_images(view, X, method, target, layer, n_steps, batch_size, verbose)
    if view.modality == "text":
        check_option("attribute", "method", method, TEXT_METHODS)
        return _attribute_texts(view, X, method, target, n_steps, batch_size, verbose)
    raise ValueError(f"attribute: inputs of modality {view.modality!r} cannot be attributed yet.")


# ------------------------------------------------------------------ images
def _attribute_images(view, X, method, target, layer, n_steps, batch_size, verbose):
    from captum.attr import IntegratedGradients

    items = image_inputs(X, "attribute")
    dataset = ImageDataset(items, _sized(eval_transform(view.data_config)))
    maps = []
    if method in CAM_METHODS:
        cams = [_block_cam(method, view.image_scores, m) for m in _cam_layers(view, layer)]
    else:
        explainer = IntegratedGradients(view.image_scores)
    with torch.enable_grad():
        for start in _progress(range(0, len(items), batch_size), len(items), batch_size, verbose):
            sizes, crops = zip(*(dataset[i] for i in range(start, min(start + batch_size, len(items)))))
            batch = torch.stack(crops).to(view.device)  # as the model sees them
            x = scale_pixels(batch, view.data_config)
            with torch.no_grad():
                predicted = view.image_scores(x).argmax(dim=1).cpu().numpy()
            goal = _targets(view, target, len(items), start, len(sizes), predicted)
            if method == "integrated_gradients":
                result = explainer.attribute(
                    x,
                    baselines=torch.zeros_like(x),
                    target=goal,
                    n_steps=n_steps,
                    internal_batch_size=batch_size,
                ).sum(dim=1)  # the channels' contributions to each pixel
            else:
                result = _fused_cam(cams, x, goal)
            for (height, width), crop_map in zip(sizes, result.detach().cpu().numpy()):
                maps.append(to_original(crop_map, height, width, view.data_config))
    return maps


def _progress(starts, total, batch_size, verbose):
    """The batch starts, with a progress bar over the inputs at ``verbose``."""
    with tqdm(total=total, desc="attributing", unit="input", disable=not verbose) as bar:
        for start in starts:
            yield start
            bar.update(min(batch_size, total - start))


def _sized(transform):
    """``transform``, also returning the decoded image's ``(height, width)``: each input is
    decoded once, by the dataset, as the model's own path decodes it."""

    def sized(image):
        size = (image.height, image.width) if isinstance(image, Image.Image) else tuple(image.shape[-2:])
        return size, transform(image)

    sized.accepts_tensors = getattr(transform, "accepts_tensors", False)
    return sized


def _block_cam(method, scores, module):
    """``(x, goal) -> (N, 1, h, w)``: ``method``'s class activation map of ``module``'s
    output, ReLU'd. Grad-CAM weighs each channel by its gradient averaged over the
    positions; HiResCAM sums each position's gradient times activation over channels."""
    from captum.attr import LayerGradCam, LayerGradientXActivation

    if method == "gradcam":
        explainer = LayerGradCam(scores, module)
        return lambda x, goal: explainer.attribute(x, target=goal, relu_attributions=True)
    explainer = LayerGradientXActivation(scores, module)
    return lambda x, goal: explainer.attribute(x, target=goal).sum(dim=1, keepdim=True).clamp_min(0)


def _fused_cam(cams, x, goal):
    """Each block's class activation map at the input's resolution, scaled to a maximum
    of 1 per image (blocks differ in scale), and their geometric mean: a pixel ranks high
    where the fine and the coarse maps agree, as Guided Grad-CAM multiplies a fine map by
    a coarse one. One block's map is returned as it is."""
    from captum.attr import LayerAttribution

    size = tuple(x.shape[-2:])
    maps = [LayerAttribution.interpolate(cam(x, goal), size, "bilinear")[:, 0] for cam in cams]
    if len(maps) == 1:
        return maps[0]
    peaks = [m.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12) for m in maps]
    scaled = torch.stack([m / peak for m, peak in zip(maps, peaks)])
    return scaled.prod(dim=0) ** (1.0 / len(maps))


def _cam_layers(view, layer):
    """The modules whose outputs Grad-CAM and HiResCAM explain: ``layer``'s, or by
    default the last block at each of the two coarsest resolutions of the feature maps."""
    backbone = view.backbone
    names = backbone.block_names()
    if layer is None:
        sizes = _spatial_blocks(backbone, view)
        if not sizes:
            raise ValueError(
                f"attribute: Grad-CAM and HiResCAM need feature maps (N, C, H, W); no block of backbone "
                f"{backbone.name!r} gives them (a vision transformer gives tokens). Use "
                "method='integrated_gradients'."
            )
        coarsest = sorted(set(sizes.values()))[:2]
        layers = [[name for name in sizes if sizes[name] == size][-1] for size in coarsest]
        layers.sort(key=names.index)
    else:
        layers = list(layer) if isinstance(layer, (list, tuple)) else [layer]
        if not layers:
            raise ValueError("attribute: layer=[] names no block; give one or more, or None.")
    modules = []
    for one in layers:
        if isinstance(one, Integral) and -len(names) <= one < len(names):
            one = names[one]
        if one not in names:
            raise ValueError(
                f"attribute: layer={one!r} is not a block of backbone {backbone.name!r}: {names}."
            )
        modules.append(backbone.block_output_module(backbone.blocks[names.index(one)]))
    return modules


def _spatial_blocks(backbone, view):
    """The blocks whose output is a feature map (N, C, H, W), seen in one forward pass,
    with the map's size (height times width), in the backbone's order."""
    shapes = {}
    handles = [
        backbone.block_output_module(block).register_forward_hook(
            lambda m, a, out, name=block.name: shapes.__setitem__(name, tuple(getattr(out, "shape", ())))
        )
        for block in backbone.blocks
    ]
    try:
        size = view.data_config.input_size
        with torch.no_grad():
            backbone(torch.zeros((1, 3, size, size), device=view.device))
    finally:
        for handle in handles:
            handle.remove()
    return {
        name: shapes[name][-2] * shapes[name][-1]
        for name in backbone.block_names()
        if len(shapes.get(name, ())) == 4
    }


def _targets(view, target, n_inputs, start, count, predicted):
    if target is None:  # the predicted class; a regressor's first output
        return [0] * count if view.regressor else predicted.tolist()
    if np.ndim(target) == 0:
        return view.target_indices([target] * count)
    if len(target) != n_inputs:
        raise ValueError(
            f"attribute: target has {len(target)} entries for {n_inputs} inputs; give one per input."
        )
    return view.target_indices(list(target)[start : start + count], first=start)


# ------------------------------------------------------------------- texts
def _attribute_texts(view, X, method, target, n_steps, batch_size, verbose):
    from captum.attr import FeatureAblation, LayerIntegratedGradients

    texts = text_inputs(X, "attribute")
    special = _text_special_ids(view.tokenizer)
    pad_id = getattr(view.tokenizer, "pad_token_id", None) or 0
    if method == "integrated_gradients":
        explainer = LayerIntegratedGradients(view.token_scores, _input_embeddings(view.backbone))
    else:  # occlusion: switch each token off in the attention mask, one at a time
        explainer = FeatureAblation(lambda m, i: view.token_scores(i, m))
    results = []
    for start in _progress(range(0, len(texts), batch_size), len(texts), batch_size, verbose):
        chunk = list(texts[start : start + batch_size])
        tokens = {k: v.to(view.device) for k, v in view.tokenize(chunk).items()}
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        with torch.no_grad():
            predicted = view.token_scores(ids, mask).argmax(dim=1).cpu().numpy()
        goal = _targets(view, target, len(texts), start, len(chunk), predicted)
        keep = mask.bool() & ~_is_special(ids, special)
        if method == "integrated_gradients":
            baseline = torch.where(keep, torch.full_like(ids, pad_id), ids)
            with torch.enable_grad():
                scores = explainer.attribute(
                    ids,
                    baselines=baseline,
                    target=goal,
                    additional_forward_args=(mask,),
                    n_steps=n_steps,
                    internal_batch_size=batch_size,
                ).sum(dim=-1)
        else:
            with torch.no_grad():
                scores = explainer.attribute(mask, baselines=0, target=goal, additional_forward_args=(ids,))
        scores = scores.detach().float().cpu().numpy()
        for row, text in enumerate(chunk):
            positions = keep[row].cpu().numpy()
            token_ids = ids[row].cpu().numpy()[positions]
            results.append(
                TokenAttribution(
                    text=text,
                    tokens=_token_strings(view.tokenizer, token_ids),
                    scores=scores[row][positions].astype(np.float32),
                    target=view.classes[goal[row]],
                )
            )
    return results


def _text_special_ids(tokenizer):
    """The token ids attributions leave out: the special tokens, except the unknown token
    (it stands for a word of the text)."""
    return set(getattr(tokenizer, "all_special_ids", []) or []) - {getattr(tokenizer, "unk_token_id", None)}


def _is_special(ids, special):
    if not special:
        return torch.zeros_like(ids, dtype=torch.bool)
    return torch.isin(ids, torch.tensor(sorted(special), device=ids.device))


def _input_embeddings(backbone):
    model = backbone.model
    if hasattr(model, "get_input_embeddings"):
        return model.get_input_embeddings()
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            return module
    raise ValueError(
        f"attribute: backbone {backbone.name!r} has no token embedding layer to attribute to; use "
        "method='occlusion'."
    )


def _token_strings(tokenizer, ids):
    if hasattr(tokenizer, "convert_ids_to_tokens"):
        return list(tokenizer.convert_ids_to_tokens([int(i) for i in ids]))
    return [str(int(i)) for i in ids]
