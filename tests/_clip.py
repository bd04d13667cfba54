"""Tiny randomly initialised CLIP-family models saved as their folders are (no download)."""

import torch

WORDS = ["[PAD]", "[UNK]", "[EOS]", "a", "photo", "of", "the", "red", "blue", "square", "thing", "."]
# One transformer layer of width 16: every tiny tower here, text or vision.
TINY_LAYERS = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
TINY_VISION = dict(**TINY_LAYERS, image_size=32, patch_size=8)


def save_tiny_clip(folder):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    _save_word_tokenizer(folder)
    text = dict(
        **TINY_LAYERS,
        vocab_size=len(WORDS),
        max_position_embeddings=32,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=TINY_VISION, projection_dim=8)).save_pretrained(
        folder
    )
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        folder
    )
    return folder


def _save_word_tokenizer(folder, end_token=True):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if end_token:  # CLIP pools the text at its end-of-text token: append one to every text.
        tokenizer.post_processor = processors.TemplateProcessing(
            single="$A [EOS]", special_tokens=[("[EOS]", 2)]
        )
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(
        folder
    )


def save_tiny_siglip(folder):
    """A tiny randomly initialised SigLIP: its images are squashed to the square (no
    crop), and its texts padded to a fixed length (it pools the last position)."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    _save_word_tokenizer(folder, end_token=False)
    text = dict(**TINY_LAYERS, vocab_size=len(WORDS), max_position_embeddings=16, pad_token_id=0)
    torch.manual_seed(0)
    SiglipModel(SiglipConfig(text_config=text, vision_config=TINY_VISION)).save_pretrained(folder)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def save_tiny_open_clip(folder, weights=True, resize_mode="shortest", size=32, **preprocess):
    """A tiny randomly initialised open_clip model saved as open_clip's hub folders are:
    ``open_clip_config.json`` (model and preprocessing) beside the weights."""
    import json
    from pathlib import Path

    import open_clip

    model_cfg = {
        "embed_dim": 8,
        "vision_cfg": {"image_size": size, "layers": 1, "width": 16, "patch_size": 8, "head_width": 8},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    }
    preprocess_cfg = {
        "size": size,
        "mean": list(open_clip.OPENAI_DATASET_MEAN),
        "std": list(open_clip.OPENAI_DATASET_STD),
        "interpolation": "bicubic",
        "resize_mode": resize_mode,
        **preprocess,
    }
    folder = Path(folder)
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    if weights:
        torch.manual_seed(0)
        model = open_clip.CLIP(**model_cfg)
        torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder
