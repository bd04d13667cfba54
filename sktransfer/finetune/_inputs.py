"""Inputs of the fine-tuning estimators: what differs between images and texts beyond the
shared adapters of :mod:`sktransfer.data` (resolution, augmentation)."""

from dataclasses import replace

from ..data import eval_transform, text_augmenter, train_transform
from ._auto import Candidate


def finetune_size(backbone):
    """Default fine-tuning resolution: 1.25x the pretraining crop for CNNs, rounded to 32 px.

    Networks trained with random-resized crops see objects larger in training than
    at test time; evaluating and fine-tuning at a higher resolution corrects that
    (Touvron et al., "FixRes", 2019; BiT's HyperRule fine-tunes at 384 px).
    Measured here: the bundled EfficientNet-Lite0's linear probe on ants vs bees goes
    from 0.948 at 224 px to 0.974 at 288 px. Transformers keep their native size (their
    position embeddings are fixed).
    """
    size = backbone.data_config.input_size
    return size if _fixed_resolution(backbone) else int(round(size * 1.25 / 32)) * 32


def _fixed_resolution(backbone):
    """Transformers (ViTs, Swin) take one input size: their position embeddings are fixed."""
    fixed = getattr(getattr(backbone.model, "patch_embed", None), "strict_img_size", False)
    return backbone.default_pooling == "cls" or fixed


def _scaled(size, factor):
    """``size * factor`` rounded to a multiple of 32 px (halves up)."""
    return int(size * factor / 32 + 0.5) * 32


# Guessed epoch costs relative to ``last:3`` until timed: training the first blocks or the
# whole network back-propagates through all of it (measured on EfficientNet-Lite0 on 2 CPU
# cores: first:3 1.4-2.1x, none 1.7-2.7x).
_DEEP_EPOCH_COST = 2.0


class ImageInputs:
    """Images as in :class:`~sktransfer.ImageEmbedder`: paths, PIL images, arrays, Series."""

    _modality = "image"
    _fixed_freeze = "last:3"

    def _setup(self, backbone):
        # (models saved before image_size_ existed trained at image_size or its default)
        self.image_size_ = getattr(self, "image_size_", None) or self.image_size or finetune_size(backbone)
        self.data_config_ = backbone.data_config.with_input_size(self.image_size_)

    def _apply_recipe(self, recipe):
        super()._apply_recipe(recipe)
        self.image_size_ = recipe.image_size

    def _auto_candidates(self, backbone, default):
        """The head alone on frozen features at the pretraining resolution, 1.25x and 1.5x
        (CNNs: see :func:`finetune_size`; transformers keep theirs; ``image_size`` set: at
        that one), each a probe head without epochs; then, at the fine-tuning resolution,
        the last 3 blocks (the default), the first 3 (input-level shifts) and the whole
        network at a flatter learning rate."""
        native = backbone.data_config.input_size
        sizes = {native, default.image_size}
        if self.image_size is not None:  # a resolution set by hand is kept: the freeze is searched
            sizes = {default.image_size}
        elif not _fixed_resolution(backbone):
            sizes |= {finetune_size(backbone), _scaled(native, 1.5)}
        sizes = sorted(sizes)
        heads = [
            Candidate(f"head {size} px", replace(default, freeze="backbone", image_size=size, epochs=0))
            for size in sizes
        ]
        depth = min(3, len(backbone.blocks) - 1)  # fewer than all: "none" is its own candidate
        tuned = []
        if depth:
            tuned.append(Candidate(f"last:{depth}", replace(default, freeze=f"last:{depth}")))
            tuned.append(
                Candidate(f"first:{depth}", replace(default, freeze=f"first:{depth}"), cost=_DEEP_EPOCH_COST)
            )
        whole = replace(default, freeze="none")
        if not isinstance(default.lr, (tuple, list, dict)):
            # The whole network at a tenth of the head's rate, 0.7x per block downwards: with the
            # default decay (0.1) the lower blocks would hardly move, the same as last:3.
            whole = replace(whole, lr=(default.lr, default.lr / 10), lr_decay=0.7)
        tuned.append(Candidate("none", whole, cost=_DEEP_EPOCH_COST * 1.25))
        return heads + tuned

    def _resolve_augment(self, backbone_trains):
        """``"auto"``: ``"light"`` when backbone blocks train, ``"none"`` when only the head
        does. A frozen backbone then yields the same features every epoch, so they are
        computed once (the linear-probe practice) instead of once per epoch. On 245
        ants-vs-bees photos, augmenting a head trained alone cost 6.5x the time for the
        same accuracy within one validation image (see the guide)."""
        if isinstance(self.augment, str) and self.augment == "auto":
            self.augment_ = "light" if backbone_trains else "none"
        else:
            self.augment_ = self.augment

    def _augment_is_off(self):
        return isinstance(self.augment_, str) and self.augment_ == "none"

    def _transform(self, training, backbone=None):
        if training:
            return train_transform(self.augment_, self.data_config_)
        return eval_transform(self.data_config_)


# lr="auto", the text estimators' default: the encoder's rate by the number of labelled
# texts. Measured with MiniLM on SST-2 training phrases outside the bar's (design sets,
# benchmarks/text_recipe.py lr and small): 2e-4 ahead of 5e-5 by 1 to 1.6 points from
# 2,000 texts, level at 512, 5 points behind at 16 and at 128 (few texts, large steps).
AUTO_LR_TEXTS = 1000
FEW_TEXTS_LR = (1e-3, 5e-5)
MANY_TEXTS_LR = (1e-3, 2e-4)


class TextInputs:
    """Texts as in :class:`~sktransfer.TextEmbedder`: lists, arrays, Series of str."""

    _modality = "text"
    _fixed_freeze = "none"

    def _auto_lr(self, n_labelled):
        """lr="auto": ``(head, encoder)`` rates for ``n_labelled`` labelled texts."""
        return MANY_TEXTS_LR if n_labelled >= AUTO_LR_TEXTS else FEW_TEXTS_LR

    def _auto_candidates(self, backbone, default):
        """The head alone on the frozen encoder's embeddings (a probe head, no epochs), the
        last 2 layers, and the whole encoder (the default)."""
        depth = min(2, len(backbone.blocks) - 1)
        last = [Candidate(f"last:{depth}", replace(default, freeze=f"last:{depth}"))] if depth else []
        return [
            Candidate("head", replace(default, freeze="backbone", epochs=0)),
            *last,
            Candidate("none", replace(default, freeze="none")),
        ]

    def _setup(self, backbone):
        backbone.check_max_length(self.max_length, type(self).__name__)

    def _resolve_augment(self, backbone_trains):
        self.augment_ = self.augment

    def _augment_is_off(self):
        return isinstance(self.augment_, str) and self.augment_ == "none"

    def _transform(self, training, backbone=None):
        if not training:
            return None
        return text_augmenter(self.augment_, backbone, type(self).__name__)
