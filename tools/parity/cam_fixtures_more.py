#!/usr/bin/env python3
"""More CAM parity fixtures from pytorch-grad-cam (PyPI `grad-cam`), beside cam_fixtures.py's:

1. ResNet-18 (the model, input and targets of tests/fixtures/cam_resnet18), written into that folder:
   scorecam_<layer>.npy, ablationcam_<layer>.npy     ScoreCAM / AblationCAM, default batch sizes
   gradcam_aug_layer4.npy                             GradCAM(..., aug_smooth=True)
   gradcam_eigen_layer4.npy                           GradCAM(..., eigen_smooth=True)
   gradcam_softmax_layer4.npy                         targets = ClassifierOutputSoftmaxTarget(t)
   embeddings.npy, gradcam_{similarity,difference}_layer4.npy
                                                      the concept tutorial's targets: ResNet-18 cut
                                                      at its pooled features, both images explained
                                                      against concept.npy (mirrored image 1)
   metrics.json, road_{morf,lerf}50_imputed.npy      ROAD (noise 0) and CamMultImageConfidenceChange
                                                      of gradcam_layer4.npy
   manifest_more.json                                 what each file is, versions
2. A small fully convolutional net (seeded random weights) in tests/fixtures/cam_segmentation/:
   model.onnx, input.npy, output.npy, regions.npy (where class 1 wins), gradcam_class1.npy
   (GradCAM with SemanticSegmentationTarget(1, region) at its third ReLU).
3. A tiny ViT (seeded random weights; 32x32 input, 4x4 patches, 64 tokens + a class token, two
   blocks) in tests/fixtures/cam_vit/: model.onnx, input.npy, logits.npy, and GradCAM / ScoreCAM /
   AblationCAM (AblationLayerVit) at blocks[-1].norm1 with the ViT example's reshape_transform.
4. EfficientNet-Lite0 (bundled ImageNet weights; the first image of
   tests/fixtures/onnx_efficientnet_lite0/input.npy, chelsea.png, target its top-1 class) into
   tests/fixtures/cam_efficientnet_lite0/: input.npy, and <method>_<layer>.npy for the gradient
   methods at layers `bn1` (torch `_bn1`, whose output is the ONNX tensor `/_conv_head/Conv_output_0`
   since the export folds BatchNorm into the convolution) and `blocks10` (torch `_blocks.10`, ONNX
   `/_blocks.10/Add_output_0`), plus ScoreCAM at `blocks10` (AblationCAM: see `efficientnet`).

    python tools/parity/cam_fixtures_more.py
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "models"))
from onnx_common import save  # noqa: E402

GRADIENT_METHODS = [("gradcam", "GradCAM"), ("hirescam", "HiResCAM"),
                    ("gradcamelementwise", "GradCAMElementWise"),
                    ("gradcamplusplus", "GradCAMPlusPlus"), ("xgradcam", "XGradCAM"),
                    ("layercam", "LayerCAM"), ("eigengradcam", "EigenGradCAM")]


def run(model, cls_name, layers, x, targets, **call):
    import pytorch_grad_cam
    modules = dict(model.named_modules())
    with getattr(pytorch_grad_cam, cls_name)(model=model,
                                             target_layers=[modules[l] for l in layers]) as cam:
        out = cam(input_tensor=x, targets=targets, **call)
    out = np.asarray(out, dtype=np.float32)
    assert out.shape == (x.shape[0],) + tuple(x.shape[2:]), out.shape
    return out


def resnet18(files):
    from export_resnet18_onnx import build_model
    from pytorch_grad_cam.utils.model_targets import (ClassifierOutputSoftmaxTarget,
                                                      ClassifierOutputTarget)
    out = os.path.join(ROOT, "tests", "fixtures", "cam_resnet18")
    with open(os.path.join(out, "manifest.json")) as f:
        targets = json.load(f)["targets"]
    x = torch.from_numpy(np.load(os.path.join(out, "input.npy")))
    torch.manual_seed(0)
    model, _ = build_model()
    logit = lambda: [ClassifierOutputTarget(t) for t in targets]  # noqa: E731
    for layer in ["layer3", "layer4"]:
        for slug, cls in [("scorecam", "ScoreCAM"), ("ablationcam", "AblationCAM")]:
            name = f"{slug}_{layer}.npy"
            save(out, name, run(model, cls, [layer], x, logit()))
            files[name] = {"model": "resnet18", "method": cls, "layer": layer}
    cases = [("gradcam_aug_layer4.npy", logit(), {"aug_smooth": True}),
             ("gradcam_eigen_layer4.npy", logit(), {"eigen_smooth": True}),
             ("gradcam_softmax_layer4.npy", [ClassifierOutputSoftmaxTarget(t) for t in targets], {})]
    for name, targets_, call in cases:
        save(out, name, run(model, "GradCAM", ["layer4"], x, targets_, **call))
        files[name] = {"model": "resnet18", "method": "GradCAM", "layer": "layer4", **call}
        print(" ", name)


def concept_targets(files):
    """pytorch-grad-cam's concept tutorial targets on ResNet-18 cut at its pooled features."""
    from export_resnet18_onnx import build_model

    # The tutorial (docs/Pixel Attribution for embeddings.ipynb) defines these; the package does not.
    class SimilarityToConceptTarget:
        def __init__(self, features):
            self.features = features

        def __call__(self, model_output):
            cos = torch.nn.CosineSimilarity(dim=0)
            return cos(model_output, self.features)

    class DifferenceFromConceptTarget:
        def __init__(self, features):
            self.features = features

        def __call__(self, model_output):
            cos = torch.nn.CosineSimilarity(dim=0)
            return 1 - cos(model_output, self.features)

    out = os.path.join(ROOT, "tests", "fixtures", "cam_resnet18")
    x = torch.from_numpy(np.load(os.path.join(out, "input.npy")))
    torch.manual_seed(0)
    model, _ = build_model()

    class Features(torch.nn.Module):
        """The tutorial's ResnetFeatureExtractor: everything but the classifier, [N, 512]."""

        def __init__(self, resnet):
            super().__init__()
            self.resnet = resnet
            self.feature_extractor = torch.nn.Sequential(*list(resnet.children())[:-1])

        def forward(self, x):
            return self.feature_extractor(x)[:, :, 0, 0]

    features = Features(model).eval()
    with torch.no_grad():
        embeddings = features(x)
    save(out, "embeddings.npy", embeddings.numpy())
    # The concept: the embedding of image 1 mirrored (explaining an image by its likeness to its
    # own embedding would be degenerate: the cosine is at its maximum, its gradient zero).
    with torch.no_grad():
        concept = features(torch.flip(x[1:], dims=[3]))[0]
    save(out, "concept.npy", concept.numpy())
    for slug, cls in [("similarity", SimilarityToConceptTarget),
                      ("difference", DifferenceFromConceptTarget)]:
        name = f"gradcam_{slug}_layer4.npy"
        save(out, name, run(features, "GradCAM", ["resnet.layer4"], x, [cls(concept), cls(concept)]))
        files[name] = {"model": "resnet18 cut at avgpool (flattened)", "method": "GradCAM",
                       "layer": "layer4", "target": f"{cls.__name__}(concept.npy)"}
        print(" ", name)


def segmentation(files):
    """SemanticSegmentationTarget on a small fully convolutional net (seeded random weights)."""
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget
    out = os.path.join(ROOT, "tests", "fixtures", "cam_segmentation")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, padding=1, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 3, 1)).eval()  # masks at half the input's resolution, 16x16
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    torch.onnx.export(net, x, os.path.join(out, "model.onnx"), input_names=["input"],
                      output_names=["masks"], opset_version=17, dynamo=False)
    save(out, "input.npy", x.numpy())
    with torch.no_grad():
        masks = net(x)
    save(out, "output.npy", masks.numpy())
    # The region where class 1 wins, per image, as the tutorial builds it from the prediction.
    regions = [np.float32(m.argmax(0).numpy() == 1) for m in masks]
    save(out, "regions.npy", np.stack(regions))
    cam = run(net, "GradCAM", ["5"], x, [SemanticSegmentationTarget(1, r) for r in regions])
    save(out, "gradcam_class1.npy", cam)
    files["cam_segmentation/gradcam_class1.npy"] = {
        "model": "cam_segmentation/model.onnx", "method": "GradCAM", "layer": "5 (third ReLU)",
        "target": "SemanticSegmentationTarget(1, regions[i])"}
    print("  cam_segmentation/gradcam_class1.npy")


def metrics(files):
    """ROAD (noise 0, so that no random numbers are compared) and CamMultImageConfidenceChange on
    ResNet-18 with the layer4 Grad-CAM of cam_fixtures.py."""
    from export_resnet18_onnx import build_model
    from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
    from pytorch_grad_cam.metrics.perturbation_confidence import (PerturbationConfidenceMetric,
                                                                  RemoveLeastRelevantFirst,
                                                                  RemoveMostRelevantFirst)
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    out = os.path.join(ROOT, "tests", "fixtures", "cam_resnet18")
    with open(os.path.join(out, "manifest.json")) as f:
        targets = json.load(f)["targets"]
    x = torch.from_numpy(np.load(os.path.join(out, "input.npy")))
    cams = np.load(os.path.join(out, "gradcam_layer4.npy"))
    torch.manual_seed(0)
    model, _ = build_model()
    t = lambda: [ClassifierOutputTarget(c) for c in targets]  # noqa: E731
    percentiles = [10, 20, 30, 40, 50, 60, 70, 80, 90]
    result = {"percentiles": percentiles, "noise": 0.0}
    for key, remover in [("morf", RemoveMostRelevantFirst), ("lerf", RemoveLeastRelevantFirst)]:
        rows = []
        for p in percentiles:
            metric = PerturbationConfidenceMetric(remover(p, NoisyLinearImputer(noise=0.0)))
            scores, imputed = metric(x, cams, t(), model, return_visualization=True)
            rows.append([float(v) for v in scores])
            if p == 50:
                save(out, f"road_{key}50_imputed.npy", imputed.numpy())
        result[key] = rows
        result[key + "_average"] = [float(v) for v in np.mean(np.float32(rows), axis=0)]
    result["combined"] = [(a - b) / 2 for a, b in zip(result["lerf_average"],
                                                        result["morf_average"])]
    result["cam_mult_image_confidence_change"] = [
        float(v) for v in CamMultImageConfidenceChange()(x, cams, t(), model)]
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(result, f, indent=1)
    files["metrics.json"] = {"model": "resnet18", "cams": "gradcam_layer4.npy",
                             "what": "ROAD MoRF/LeRF per percentile (NoisyLinearImputer(noise=0)), "
                                     "averages, ROADCombined, CamMultImageConfidenceChange"}
    print("  metrics.json", result["combined"], result["cam_mult_image_confidence_change"])


VIT_DIM, VIT_HEADS = 32, 4


class VitBlock(torch.nn.Module):
    """A pre-norm ViT block; `attention` keeps the last forward's probabilities (for Chefer's
    relevance in tools/text/attention_reference.py, which retains their gradients)."""

    def __init__(self):
        super().__init__()
        dim = VIT_DIM
        self.norm1 = torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)
        self.norm2 = torch.nn.LayerNorm(dim)
        self.fc1 = torch.nn.Linear(dim, 2 * dim)
        self.fc2 = torch.nn.Linear(2 * dim, dim)
        self.attention = None

    def forward(self, x):
        n, t, _ = x.shape
        dim, heads = VIT_DIM, VIT_HEADS
        q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, heads, dim // heads).permute(
            2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-2, -1) / (dim // heads) ** 0.5, dim=-1)
        self.attention = attention
        x = x + self.proj((attention @ v).transpose(1, 2).reshape(n, t, dim))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm2(x))))


class TinyViT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        dim = VIT_DIM
        self.patch = torch.nn.Conv2d(3, dim, 4, stride=4)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        self.pos = torch.nn.Parameter(torch.randn(1, 65, dim) * 0.5)
        self.blocks = torch.nn.Sequential(VitBlock(), VitBlock())
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, 10)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1) + self.pos
        return self.head(self.norm(self.blocks(tokens))[:, 0])


def tiny_vit():
    """The tiny ViT of tests/fixtures/cam_vit (seed 0)."""
    torch.manual_seed(0)
    return TinyViT().eval()


def vit(files):
    """GradCAM with a token reshape on a tiny ViT (seeded random weights), as pytorch-grad-cam's
    ViT example does it: target layer blocks[-1].norm1, reshape_transform dropping the class token
    and laying the 8x8 patch tokens out as a grid."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    out = os.path.join(ROOT, "tests", "fixtures", "cam_vit")
    os.makedirs(out, exist_ok=True)
    model = tiny_vit()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    torch.onnx.export(model, x, os.path.join(out, "model.onnx"), input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    save(out, "input.npy", x.numpy())
    with torch.no_grad():
        logits = model(x)
    save(out, "logits.npy", logits.numpy())
    targets = [int(t) for t in logits.argmax(1)]

    def reshape_transform(tensor, height=8, width=8):
        result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    import pytorch_grad_cam
    for slug, cls in [("gradcam", "GradCAM"), ("scorecam", "ScoreCAM"),
                      ("ablationcam", "AblationCAM")]:
        kwargs = {"reshape_transform": reshape_transform}
        if cls == "AblationCAM":
            from pytorch_grad_cam.ablation_layer import AblationLayerVit
            kwargs["ablation_layer"] = AblationLayerVit()
        with getattr(pytorch_grad_cam, cls)(model=model, target_layers=[model.blocks[-1].norm1],
                                            **kwargs) as cam:
            maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
        save(out, f"{slug}.npy", maps)
        files[f"cam_vit/{slug}.npy"] = {"model": "cam_vit/model.onnx", "method": cls,
                                        "layer": "blocks[-1].norm1", "targets": targets}
        print(f"  cam_vit/{slug}.npy")
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"generator": "tools/parity/cam_fixtures_more.py", "targets": targets,
                   "reshape": "drop token 0, 8x8 grid, channels first"}, f, indent=1)


def efficientnet(files):
    from export_efficientnet_lite0 import build_model
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    out = os.path.join(ROOT, "tests", "fixtures", "cam_efficientnet_lite0")
    os.makedirs(out, exist_ok=True)
    x = np.load(os.path.join(ROOT, "tests", "fixtures", "onnx_efficientnet_lite0", "input.npy"))[:1]
    save(out, "input.npy", x)
    x = torch.from_numpy(x)
    model = build_model()
    with torch.no_grad():
        target = int(model(x).argmax(1)[0])
    print("  efficientnet target", target)
    layers = {"bn1": "_bn1", "blocks10": "_blocks.10"}
    jobs = [(slug, cls, key) for slug, cls in GRADIENT_METHODS for key in layers]
    # No AblationCAM here: its AblationLayer replaces the module and is then called as
    # `block(x, drop_connect_rate=...)`, which it does not accept; at `_bn1` it would take 1280
    # forward passes, too slow for a test. ResNet-18 covers AblationCAM.
    jobs += [("scorecam", "ScoreCAM", "blocks10")]
    for slug, cls, key in jobs:
        name = f"{slug}_{key}.npy"
        save(out, name, run(model, cls, [layers[key]], x, [ClassifierOutputTarget(target)]))
        files["cam_efficientnet_lite0/" + name] = {"model": "efficientnet_lite0", "method": cls,
                                                   "layer": layers[key], "target": target}
        print(" ", name)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"generator": "tools/parity/cam_fixtures_more.py", "target": target,
                   "layers": {"bn1": "/_conv_head/Conv_output_0",
                              "blocks10": "/_blocks.10/Add_output_0"},
                   "files": {k: v for k, v in files.items() if k.startswith("cam_eff")}},
                  f, indent=1)


def main():
    from importlib.metadata import version
    files = {}
    resnet18(files)
    concept_targets(files)
    metrics(files)
    segmentation(files)
    vit(files)
    efficientnet(files)
    with open(os.path.join(ROOT, "tests", "fixtures", "cam_resnet18", "manifest_more.json"),
              "w") as f:
        json.dump({"generator": "tools/parity/cam_fixtures_more.py",
                   "files": {k: v for k, v in files.items() if not k.startswith("cam_eff")},
                   "versions": {"grad-cam": version("grad-cam"), "torch": torch.__version__}},
                  f, indent=1)


if __name__ == "__main__":
    main()
