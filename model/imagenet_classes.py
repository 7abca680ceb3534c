#!/usr/bin/python3
"""Writes model/imagenet_classes.txt: the names of the 1000 ImageNet-1k
classes, one per line in class-index order, as torchvision lists them for
its pretrained weights (torchvision.models._meta._IMAGENET_CATEGORIES).
model.File.Classes gives them to 1000-class weights that name no classes.

Run from the repository root: /usr/bin/python3 model/imagenet_classes.py
"""

import os

from torchvision.models._meta import _IMAGENET_CATEGORIES as NAMES

assert len(NAMES) == 1000 and len(set(NAMES)) == 1000
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_classes.txt"), "w") as f:
    for name in NAMES:
        assert name.strip() == name and "\n" not in name
        f.write(name + "\n")
