"""attribute(): gradients reach the pixels and tokens of fine-tuned models and of embedder
pipelines; the maps land on the original pictures; plots; errors."""

from dataclasses import replace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from sktransfer import (
    ImageClassifier,
    ImageEmbedder,
    ImageMultiTask,
    ImageRegressor,
    TextClassifier,
    TextEmbedder,
)
from sktransfer.backbones import load_backbone
from sktransfer.data import ImageDataset, eval_transform, scale_pixels
from sktransfer.inspection import (
    TokenAttribution,
    attribute,
    choose_cam_layers,
    deletion_test,
    plot_image_attribution,
)
from sktransfer.inspection._geometry import to_original, visible_region
from sktransfer.inspection._views import model_view

pytest.importorskip("captum")
matplotlib.use("Agg")

TEXTS = ["good movie really", "bad film awful", "great fun", "dull and slow"] * 3
TEXT_LABELS = ["pos", "neg", "pos", "neg"] * 3


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (12, 40, 48, 3), dtype=np.uint8)
    y = np.array(["ant", "bee"] * 6)
    X[y == "bee", 10:20, 10:20] = 255  # bees carry a white square
    return X, y


@pytest.fixture(scope="module")
def image_pipeline(images):
    X, y = images
    return make_pipeline(ImageEmbedder("tiny_cnn", weights=None), StandardScaler(), LogisticRegression()).fit(
        X, y
    )


@pytest.fixture(scope="module")
def image_classifier(images):
    X, y = images
    return ImageClassifier("tiny_cnn", weights=None, max_epochs=1, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def text_pipeline():
    return make_pipeline(TextEmbedder("tiny_text", weights=None), LogisticRegression()).fit(
        TEXTS, TEXT_LABELS
    )


@pytest.fixture(scope="module")
def text_classifier():
    return TextClassifier("tiny_text", weights=None, max_epochs=1, random_state=0).fit(TEXTS, TEXT_LABELS)


def image_batch(view, X):
    dataset = ImageDataset(list(X), eval_transform(view.data_config))
    return scale_pixels(torch.stack([dataset[i] for i in range(len(X))]), view.data_config)


@pytest.mark.parametrize("fixture", ["image_pipeline", "image_classifier"])
def test_the_view_reproduces_the_models_scores(request, images, fixture):
    model = request.getfixturevalue(fixture)
    view = model_view(model)
    x = image_batch(view, images[0])
    proba = view.explaining("probability").image_scores(x).detach().numpy()
    np.testing.assert_allclose(proba, model.predict_proba(images[0]), atol=1e-4)
    logits = view.image_scores(x).detach().numpy()  # the default: before the softmax
    decision = model.decision_function(images[0])
    np.testing.assert_allclose(
        logits[:, 1] - logits[:, 0],
        2 * decision if fixture == "image_pipeline" else decision,
        rtol=1e-3,
        atol=1e-4,
    )


@pytest.mark.parametrize("fixture", ["text_pipeline", "text_classifier"])
def test_the_text_view_reproduces_predict_proba(request, fixture):
    model = request.getfixturevalue(fixture)
    view = model_view(model).explaining("probability")
    tokens = view.tokenize(TEXTS)
    scores = view.token_scores(tokens["input_ids"], tokens["attention_mask"]).detach().numpy()
    np.testing.assert_allclose(scores, model.predict_proba(TEXTS), atol=1e-5)


def test_a_confident_model_still_gets_maps(images):
    # its probabilities are 1.0 in float32 (zero gradient); its logits still move
    X, y = images
    pipe = make_pipeline(ImageEmbedder("tiny_cnn", weights=None), StandardScaler(), LogisticRegression()).fit(
        X, y
    )
    pipe[-1].coef_ *= 500
    pipe[-1].intercept_ *= 500
    assert pipe.predict_proba(X[:2]).max(axis=1).min() == 1.0
    logit = {m: np.abs(attribute(pipe, X[:2], m)[1]).max() for m in ("gradcam", "integrated_gradients")}
    flat = np.abs(attribute(pipe, X[:2], "integrated_gradients", output="probability")[1]).max()
    assert logit["gradcam"] > 0 and logit["integrated_gradients"] > 1e4 * flat


def test_a_regressor_is_explained_in_the_units_of_y(images):
    X, _ = images
    brightness = X.mean(axis=(1, 2, 3)) * 100  # large units
    model = ImageRegressor("tiny_cnn", weights=None, max_epochs=1, random_state=0).fit(X, brightness)
    view = model_view(model)
    np.testing.assert_allclose(
        view.image_scores(image_batch(view, X))[:, 0].detach().numpy(), model.predict(X), rtol=1e-4
    )
    maps = attribute(model, X[:2, :32, :32], "integrated_gradients", n_steps=64)
    x = image_batch(view, X[:2, :32, :32])
    with torch.no_grad():
        gap = (view.image_scores(x) - view.image_scores(torch.zeros_like(x)))[:, 0].numpy()
    np.testing.assert_allclose([m.sum() for m in maps], gap, rtol=0.05)
    with pytest.raises(ValueError, match="output='probability' needs probabilities"):
        attribute(model, X[:1], output="probability")


@pytest.mark.parametrize("final", [RidgeClassifier(), LogisticRegression()])
def test_a_multiclass_linear_pipeline_is_followed(images, final):
    X, _ = images
    y = np.array(["a", "b", "c"] * 4)
    pipe = make_pipeline(ImageEmbedder("tiny_cnn", weights=None), StandardScaler(), final).fit(X, y)
    view = model_view(pipe)
    if hasattr(final, "predict_proba"):
        view, expected = view.explaining("probability"), pipe.predict_proba(X)
    else:
        expected = pipe.decision_function(X)
    scores = view.image_scores(image_batch(view, X)).detach().numpy()
    np.testing.assert_allclose(scores, expected, atol=1e-4)


@pytest.mark.parametrize("method", ["gradcam", "hirescam", "integrated_gradients"])
@pytest.mark.parametrize("fixture", ["image_pipeline", "image_classifier"])
def test_image_maps_have_each_inputs_own_size(request, images, method, fixture):
    model = request.getfixturevalue(fixture)
    X = [images[0][0], images[0][1][:30, :36], images[0][2][:, :20]]  # three sizes
    maps = attribute(model, X, method)
    assert [m.shape for m in maps] == [(40, 48), (30, 36), (40, 20)]
    assert all(m.dtype == np.float32 and np.isfinite(m).all() for m in maps)
    assert sum(np.abs(m).sum() for m in maps) > 0  # ReLU'd Grad-CAM may be zero on one input
    if method != "integrated_gradients":  # class activation maps are ReLU'd
        assert all((m >= 0).all() for m in maps)


def test_integrated_gradients_complete_the_score_difference(image_pipeline, images):
    # completeness: the attributions sum to f(x) - f(baseline) for the explained class
    X = images[0][:2, :32, :32]  # the tiny CNN's own size: no resize, the map is the crop's
    maps = attribute(image_pipeline, X, "integrated_gradients", n_steps=64)
    view = model_view(image_pipeline)
    x = image_batch(view, X)
    predicted = image_pipeline.predict_proba(X).argmax(axis=1)
    with torch.no_grad():
        gap = view.image_scores(x) - view.image_scores(torch.zeros_like(x))
    expected = gap[np.arange(2), predicted].numpy()
    np.testing.assert_allclose([m.sum() for m in maps], expected, rtol=0.05, atol=1e-3)


def test_the_target_changes_the_explanation(image_pipeline, images):
    X = images[0][:2]
    ant = attribute(image_pipeline, X, "integrated_gradients", target="ant")
    bee = attribute(image_pipeline, X, "integrated_gradients", target=["bee", "bee"])
    np.testing.assert_allclose(ant[0], -bee[0], atol=1e-5)  # two classes: p(ant) = 1 - p(bee)
    with pytest.raises(
        ValueError, match=r"target 'wasp' .* is not a class of the model; choose from \['ant', 'bee'\]"
    ):
        attribute(image_pipeline, X, target="wasp")
    with pytest.raises(ValueError, match="target has 3 entries for 2 inputs"):
        attribute(image_pipeline, X, target=["ant"] * 3)
    with pytest.raises(ValueError, match=r"target 'wasp' \(input 1\)"):  # counted in X, not in a batch
        attribute(image_pipeline, X, "gradcam", target=["ant", "wasp"], batch_size=1)


def test_gradcam_layer_choice(image_pipeline, images):
    names = image_pipeline[0].backbone_.block_names()
    first = attribute(image_pipeline, images[0][:1], "gradcam", layer=names[0])
    last = attribute(image_pipeline, images[0][:1], "gradcam")
    assert not np.allclose(first[0], last[0])
    with pytest.raises(ValueError, match="layer='nope' is not a block"):
        attribute(image_pipeline, images[0][:1], "gradcam", layer="nope")
    with pytest.raises(ValueError, match="layer='stem' chooses Grad-CAM's or HiResCAM's block"):
        attribute(image_pipeline, images[0][:1], "integrated_gradients", layer="stem")


def test_gradcam_of_several_blocks_is_the_geometric_mean_of_their_scaled_maps(image_pipeline, images):
    X = images[0][:2, :32, :32]  # the tiny CNN's own size: the maps are the crop's
    names = image_pipeline[0].backbone_.block_names()
    first, second = (attribute(image_pipeline, X, "gradcam", layer=name) for name in names[-2:])
    fused = attribute(image_pipeline, X, "gradcam", layer=names[-2:])
    for a, b, both in zip(first, second, fused):
        assert a.max() > 0 and b.max() > 0  # else the comparison would be of NaNs
        np.testing.assert_allclose(both, np.sqrt(a / a.max() * b / b.max()), atol=1e-5)
    with pytest.raises(ValueError, match=r"layer=\[\] names no block"):
        attribute(image_pipeline, X, "gradcam", layer=[])
    with pytest.raises(ValueError, match="layer='nope' is not a block"):
        attribute(image_pipeline, X, "gradcam", layer=[names[0], "nope"])


def test_hirescam_sums_gradient_times_activation_at_each_position(image_pipeline, images):
    X = images[0][:2, :32, :32]  # the tiny CNN's own size: the maps are the crop's
    view = model_view(image_pipeline)
    backbone = view.backbone
    names = backbone.block_names()
    module = backbone.block_output_module(backbone.blocks[0])
    seen = {}
    handle = module.register_forward_hook(lambda m, a, out: seen.__setitem__("out", out))
    try:
        x = image_batch(view, X).requires_grad_(True)  # the backbone's weights are frozen
        scores = view.image_scores(x)
        chosen = scores[np.arange(2), scores.argmax(dim=1)].sum()
        (gradient,) = torch.autograd.grad(chosen, seen["out"])
    finally:
        handle.remove()
    by_hand = (gradient * seen["out"]).sum(dim=1, keepdim=True).clamp_min(0)
    by_hand = torch.nn.functional.interpolate(by_hand, size=(32, 32), mode="bilinear")[:, 0]
    maps = attribute(image_pipeline, X, "hirescam", layer=names[0])
    np.testing.assert_allclose(np.stack(maps), by_hand.detach().numpy(), rtol=1e-4, atol=1e-6)
    # Grad-CAM averages the gradient over positions first: on an early block, a different map
    assert not np.allclose(maps[0], attribute(image_pipeline, X, "gradcam", layer=names[0])[0])
    # before global average pooling and a linear head the gradient is the same everywhere,
    # and the two maps are one (Draelos and Carin, 2020)
    last = [attribute(image_pipeline, X, m, layer=names[-1]) for m in ("hirescam", "gradcam")]
    np.testing.assert_allclose(*last, rtol=1e-4, atol=1e-6)


def test_gradcam_default_blocks_are_the_last_at_the_two_coarsest_resolutions(images):
    from sktransfer.inspection._attribute import _cam_layers

    X, y = images
    pipe = make_pipeline(ImageEmbedder("efficientnet_lite0", weights=None), LogisticRegression()).fit(X, y)
    backbone = pipe[0].backbone_
    chosen = _cam_layers(model_view(pipe), None)
    expected = [
        backbone.block_output_module(backbone.blocks[backbone.block_names().index(n)])
        for n in ("blocks.4", "head")
    ]
    assert chosen == expected  # 14 and 7 pixels a side at 224


@pytest.mark.parametrize("crop_mode", ["center", "squash", "border"])
@pytest.mark.parametrize("height, width", [(300, 400), (400, 300), (250, 251), (100, 357)])
def test_a_coordinate_map_lands_where_it_came_from(height, width, crop_mode):
    config = replace(load_backbone("efficientnet_lite0", weights=None).data_config, crop_mode=crop_mode)
    rows = np.arange(height, dtype=np.float32)[:, None].repeat(width, axis=1)
    picture = torch.as_tensor(rows)[None].repeat(3, 1, 1)  # the row index, as a grey image
    crop = eval_transform(config)(picture.clamp(0, 255).to(torch.uint8))[0].float().numpy()
    back = to_original(crop, height, width, config)
    seen = visible_region(height, width, config) & (rows < 255)
    inner = np.zeros_like(seen)
    inner[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = True  # away from the crop's edges
    inner &= seen
    assert np.abs(back[inner] - rows[inner]).max() < 2.0


def test_maps_go_back_to_the_original_geometry():
    config = load_backbone("efficientnet_lite0", weights=None).data_config  # resize 256, crop 224
    crop_map = np.ones((config.input_size, config.input_size), dtype=np.float32)
    back = to_original(crop_map, 300, 400, config)
    seen = visible_region(300, 400, config)
    assert back.shape == (300, 400)
    assert back[150, 200] == pytest.approx(1.0) and back[150, 0] == 0 and back[0, 200] == 0
    inside = seen.mean()
    assert inside == pytest.approx(config.input_size**2 / (config.resize_size**2 * 4 / 3), abs=0.02)
    assert back[seen].mean() > 0.95 and back[~seen].mean() < 0.1
    # Squashed, the crop keeps the same share of each side: the central 224 / 256 of both.
    squashed = visible_region(300, 400, replace(config, crop_mode="squash"))
    assert squashed.mean() == pytest.approx((config.input_size / config.resize_size) ** 2, abs=0.01)
    assert squashed[150, 30] and not squashed[150, 10]  # a 400-pixel side loses 25 on each end
    # Padded to the square, nothing is cut at crop_pct 1; the map lands on the whole picture.
    whole = replace(config, crop_mode="border", crop_pct=1.0, resize=None)
    assert visible_region(300, 400, whole).all()
    assert (to_original(crop_map, 300, 400, whole) > 0.95).mean() > 0.97


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
@pytest.mark.parametrize("fixture", ["text_pipeline", "text_classifier"])
def test_token_attributions(request, method, fixture):
    model = request.getfixturevalue(fixture)
    result = attribute(model, TEXTS[:2], method)
    assert all(isinstance(r, TokenAttribution) for r in result)
    assert "".join(result[0].tokens) == TEXTS[0]  # bytes, no special tokens
    assert result[0].scores.shape == (len(TEXTS[0]),) and np.abs(result[0].scores).sum() > 0
    assert result[0].target == model.predict(TEXTS[:1])[0]


def test_occlusion_is_the_drop_when_a_token_is_removed(text_classifier):
    view = model_view(text_classifier)
    result = attribute(text_classifier, TEXTS[:1], "occlusion", target="pos")[0]
    tokens = view.tokenize(TEXTS[:1])
    column = list(text_classifier.classes_).index("pos")
    full = view.token_scores(tokens["input_ids"], tokens["attention_mask"])[0, column]
    mask = tokens["attention_mask"].clone()
    mask[0, 1 + 3] = 0  # the fourth byte, after the start token
    without = view.token_scores(tokens["input_ids"], mask)[0, column]
    assert result.scores[3] == pytest.approx(float((full - without).detach()), abs=1e-5)


def test_renderings(image_pipeline, images, text_classifier):
    maps = attribute(image_pipeline, images[0][:1], "gradcam")
    fig = plot_image_attribution(images[0][0], maps[0])
    assert len(fig.axes[0].images) == 2
    with pytest.raises(ValueError, match="attribution has shape"):
        plot_image_attribution(images[0][0], maps[0][:10])
    tokens = attribute(text_classifier, ["<b>bad</b>"], "occlusion")[0]
    html = tokens.to_html()
    assert html.count("<span") == len(tokens.tokens) and "&lt;" in html  # escaped
    assert tokens._repr_html_() == html
    assert len(tokens.plot().axes[0].texts) == len(tokens.tokens)


def test_what_cannot_be_explained_says_why(images):
    X, y = images
    with pytest.raises(NotFittedError):
        attribute(ImageClassifier("tiny_cnn", weights=None), X[:1])
    with pytest.raises(NotFittedError):
        attribute(make_pipeline(ImageEmbedder("tiny_cnn", weights=None), LogisticRegression()), X[:1])
    frame = pd.DataFrame({"kind": y, "size": np.arange(12.5, 24.5)})
    several = ImageMultiTask("tiny_cnn", weights=None, max_epochs=1).fit(X, frame)
    with pytest.raises(ValueError, match="predicts several tasks"):
        attribute(several, X[:1])
    with pytest.raises(TypeError, match="cannot explain a SVC"):
        attribute(SVC().fit(X.reshape(12, -1), y), X)
    non_linear = make_pipeline(ImageEmbedder("tiny_cnn", weights=None), SVC()).fit(X, y)
    with pytest.raises(ValueError, match="must end with a linear classifier"):
        attribute(non_linear, X[:1])
    with pytest.raises(ValueError, match="method='occlusion' is not one of"):
        attribute(
            make_pipeline(ImageEmbedder("tiny_cnn", weights=None), LogisticRegression()).fit(X, y),
            X,
            "occlusion",
        )


def test_the_shap_recipe_for_text_pipelines(text_pipeline):
    shap = pytest.importorskip("shap")
    explainer = shap.Explainer(
        lambda texts: text_pipeline.predict_proba(list(texts)),
        shap.maskers.Text(r"\W+"),
        output_names=list(text_pipeline.classes_),
    )
    values = explainer(TEXTS[:2])
    proba = text_pipeline.predict_proba(TEXTS[:2])
    for row in range(2):  # SHAP values add up to the prediction
        np.testing.assert_allclose(
            values[row].values.sum(axis=0) + values[row].base_values, proba[row], atol=1e-6
        )


def test_the_shap_recipe_for_image_pipelines(image_pipeline, images):
    shap = pytest.importorskip("shap")
    pytest.importorskip("cv2", reason="shap's image masker needs opencv-python-headless")
    X = images[0][:2]
    explainer = shap.Explainer(
        lambda batch: image_pipeline.predict_proba(np.clip(batch, 0, 255).astype(np.uint8)),
        shap.maskers.Image("blur(8,8)", X[0].shape),
        output_names=list(image_pipeline.classes_),
    )
    values = explainer(X, max_evals=100, batch_size=50)
    assert values.values.shape == (2, 40, 48, 3, 2)
    proba = image_pipeline.predict_proba(X)
    totals = values.values.reshape(2, -1, 2).sum(axis=1) + values.base_values
    np.testing.assert_allclose(totals, proba, atol=1e-6)


def test_a_progress_bar_on_request(image_pipeline, images, capsys):
    attribute(image_pipeline, images[0][:3], "gradcam", batch_size=2, verbose=1)
    assert "attributing" in capsys.readouterr().err
    attribute(image_pipeline, images[0][:3], "gradcam", batch_size=2)
    assert "attributing" not in capsys.readouterr().err


def test_files_are_decoded_once_and_mapped_to_their_size(image_pipeline, image_files):
    paths, arrays = image_files
    maps = attribute(image_pipeline, paths[:2], "gradcam")
    assert [m.shape for m in maps] == [a.shape[:2] for a in arrays[:2]]
    from_arrays = attribute(image_pipeline, list(arrays[:2]), "gradcam")
    # PNG is lossless; files and arrays take slightly different resizing paths (maps peak at 1)
    np.testing.assert_allclose(maps[0], from_arrays[0], atol=0.01)


@pytest.mark.parametrize("crop_mode, height", [("border", 33), ("border", 31), ("center", 33)])
def test_padding_lands_where_the_crop_box_says(crop_mode, height):
    from sktransfer.backbones import DataConfig
    from sktransfer.inspection._geometry import crop_box

    # 15 rows of padding (17 for 31 rows): odd, the extra row goes after the image, where
    # rounding -7.5 would put it before. The centre crop pads when crop_pct > 1.
    crop_pct = 1.0 if crop_mode == "border" else 48 / 33.5  # resize to 33
    config = DataConfig(input_size=48, crop_pct=crop_pct, crop_mode=crop_mode, fill=(0, 0, 0))
    width = 48 if crop_mode == "border" else 36
    picture = torch.zeros((3, height, width), dtype=torch.uint8)
    picture[:, 0] = 255  # the image's first row white, the padding black
    crop = eval_transform(config)(picture)[0].float()
    top, *_ = crop_box(height, width, config)
    first_white = int(torch.nonzero(crop[:, crop.shape[1] // 2] > 200)[0])
    assert top < 0 and first_white == -top


# ------------------------------------------------------------------ faithfulness
def test_the_deletion_test_sets_the_top_seen_pixels_to_the_neutral_colour(image_pipeline, images):
    X = images[0][:4]
    maps = attribute(image_pipeline, X, "gradcam")
    result = deletion_test(image_pipeline, X, maps, fraction=0.25, n_random=2, random_state=0)
    config = image_pipeline[0].data_config_
    fill = np.round(np.asarray(config.mean) * 255).astype(np.uint8)
    cuts = []
    for picture, attribution in zip(X, maps):  # by hand: the top quarter of the crop's pixels
        seen = np.flatnonzero(visible_region(*picture.shape[:2], config))
        chosen = seen[np.argsort(-attribution.ravel()[seen], kind="stable")[: round(0.25 * len(seen))]]
        cut = picture.reshape(-1, 3).copy()
        cut[chosen] = fill
        cuts.append(cut.reshape(picture.shape))
    before, after = image_pipeline.predict_proba(X), image_pipeline.predict_proba(cuts)
    rows, predicted = np.arange(4), before.argmax(axis=1)
    np.testing.assert_allclose(result.top, before[rows, predicted] - after[rows, predicted], atol=1e-6)
    assert result.ratio == pytest.approx(result.top.mean() / result.random.mean())
    again = deletion_test(image_pipeline, X, maps, fraction=0.25, n_random=2, random_state=0)
    np.testing.assert_array_equal(again.random, result.random)  # reproducible with random_state


def test_deleting_what_the_model_relies_on_beats_deleting_at_random(image_pipeline, images):
    X, y = images
    square = np.zeros(X.shape[1:3])
    square[10:20, 10:20] = 1  # where the bees' white square is
    toward = deletion_test(image_pipeline, X, [square] * len(X), random_state=0)
    away = deletion_test(image_pipeline, X, [1 - square] * len(X), random_state=0)
    bees = y == "bee"
    assert toward.top[bees].mean() > away.top[bees].mean()
    assert toward.top[bees].mean() > toward.random[bees].mean()


def test_the_deletion_test_removes_the_top_tokens(text_classifier):
    attributions = attribute(text_classifier, TEXTS[:4], "occlusion")
    result = deletion_test(text_classifier, TEXTS[:4], attributions, n_tokens=1, random_state=0)
    view = model_view(text_classifier).explaining("probability")
    tokens = view.tokenize(TEXTS[:4])
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    special = torch.tensor(sorted(view.tokenizer.all_special_ids))
    cut = mask.clone()
    for row, attribution in enumerate(attributions):  # by hand: each text's top token masked
        positions = np.flatnonzero((mask[row].bool() & ~torch.isin(ids[row], special)).numpy())
        cut[row, positions[np.argmax(attribution.scores)]] = 0
    with torch.no_grad():
        before, after = view.token_scores(ids, mask).numpy(), view.token_scores(ids, cut).numpy()
    rows, predicted = np.arange(4), before.argmax(axis=1)
    np.testing.assert_allclose(result.top, before[rows, predicted] - after[rows, predicted], atol=1e-6)
    assert result.flipped_top == np.mean(after.argmax(axis=1) != predicted)


def test_what_the_deletion_test_cannot_take_says_why(image_pipeline, images, text_classifier):
    X = images[0][:2]
    maps = attribute(image_pipeline, X, "gradcam")
    with pytest.raises(ValueError, match="1 attributions for 2 images"):
        deletion_test(image_pipeline, X, maps[:1])
    with pytest.raises(ValueError, match=r"attribution 1 has shape \(3, 3\)"):
        deletion_test(image_pipeline, X, [maps[0], np.zeros((3, 3))])
    with pytest.raises(ValueError, match="fraction=1.5 must be a share"):
        deletion_test(image_pipeline, X, maps, fraction=1.5)
    with pytest.raises(ValueError, match="n_random=0 must be a positive integer"):
        deletion_test(image_pipeline, X, maps, n_random=0)
    regressor = ImageRegressor("tiny_cnn", weights=None, freeze="last:1", max_epochs=1, random_state=0).fit(
        X, [0.0, 1.0]
    )
    with pytest.raises(TypeError, match="ImageRegressor has no predict_proba"):
        deletion_test(regressor, X, maps)
    other = attribute(text_classifier, [TEXTS[2]] * 2, "occlusion")  # shorter texts
    with pytest.raises(ValueError, match=r"attribution 0 scores \d+ tokens, text 0 has \d+"):
        deletion_test(text_classifier, TEXTS[:2], other)


def test_cam_blocks_are_chosen_by_the_deletion_test(image_pipeline, images):
    X = images[0]
    choice = choose_cam_layers(image_pipeline, X, random_state=0)
    names = image_pipeline[0].backbone_.block_names()
    # the tiny CNN has one block at each of its two coarsest resolutions: each alone, and the pair
    assert sorted(map(tuple, choice.report["layer"])) == sorted(
        [(names[1],), (names[2],), (names[1], names[2])]
    )
    assert list(choice.report["ratio"]) == sorted(choice.report["ratio"], reverse=True)
    assert choice.layer == choice.report["layer"].iloc[0]
    for row in choice.report.itertuples():  # each ratio is the deletion test's, same random draws
        maps = attribute(image_pipeline, X, "gradcam", layer=row.layer)
        assert row.ratio == pytest.approx(deletion_test(image_pipeline, X, maps, random_state=0).ratio)
    given = choose_cam_layers(image_pipeline, X, "hirescam", candidates=[names[0], [names[0], names[2]]])
    assert sorted(map(str, given.report["layer"])) == sorted([names[0], str([names[0], names[2]])])


def test_what_choose_cam_layers_cannot_take_says_why(image_pipeline, images, text_classifier):
    with pytest.raises(ValueError, match="method='integrated_gradients' has no blocks"):
        choose_cam_layers(image_pipeline, images[0], "integrated_gradients")
    with pytest.raises(ValueError, match=r"candidates=\[\] names no block"):
        choose_cam_layers(image_pipeline, images[0], candidates=[])
    with pytest.raises(ValueError, match="chosen on images; this model reads texts"):
        choose_cam_layers(text_classifier, TEXTS)
