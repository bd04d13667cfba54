"""Inputs of the fine-tuning estimators: what differs between images and texts beyond the
shared adapters of :mod:`sktransfer.data` (resolution, augmentation)."""

from ..data import eval_transform, train_transform


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
    fixed = getattr(getattr(backbone.model, "patch_embed", None), "strict_img_size", False)
    if backbone.default_pooling == "cls" or fixed:  # ViTs, Swin: fixed input size
        return size
    return int(round(size * 1.25 / 32)) * 32


class ImageInputs:
    """Images as in :class:`~sktransfer.ImageEmbedder`: paths, PIL images, arrays, Series."""

    _modality = "image"

    def _setup(self, backbone):
        self.data_config_ = backbone.data_config.with_input_size(self.image_size or finetune_size(backbone))

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

    def _transform(self, training):
        if training:
            return train_transform(self.augment_, self.data_config_)
        return eval_transform(self.data_config_)


class TextInputs:
    """Texts as in :class:`~sktransfer.TextEmbedder`: lists, arrays, Series of str."""

    _modality = "text"

    def _setup(self, backbone):
        backbone.check_max_length(self.max_length, type(self).__name__)

    def _resolve_augment(self, backbone_trains):
        pass  # texts are not augmented

    def _augment_is_off(self):
        return True

    def _transform(self, training):
        return None
