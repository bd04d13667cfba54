"""How to read the unpooled feature map out of each family of network.

Module-level functions looked up by name, so that a pickled backbone stores a
string rather than a function.
"""

import torch


def _call(model, x):
    return model(x)


def _timm(model, x):
    return model.forward_features(x)


def _torchvision_resnet(model, x):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def _torchvision_features(model, x):
    return model.features(x)


def _torchvision_vit(model, x):
    x = model._process_input(x)
    cls = model.class_token.expand(x.shape[0], -1, -1)
    return model.encoder(torch.cat([cls, x], dim=1))


FEATURE_FUNCTIONS = {
    "call": _call,
    "timm": _timm,
    "torchvision_resnet": _torchvision_resnet,
    "torchvision_features": _torchvision_features,
    "torchvision_vit": _torchvision_vit,
}
