#!/usr/bin/env python3
"""torchvision classifiers with seeded random weights, exported to ONNX (batch axis dynamic): the
networks of the CPU benchmarks (`cargo bench --bench onnx efficientnet_b0|regnet_y_400mf|convnext_tiny`,
whose Captum side is `tools/parity/bench_captum_onnx_models.py --models NAME`). Nothing is downloaded:
torchvision builds the architecture, `torch.manual_seed(0)` draws the weights, and the torch module
Captum runs is the same `build_model(name)`.

    pip install torch torchvision onnx
    python tools/models/export_torchvision_random.py --out /tmp/tv [--models efficientnet_b0]
    # writes /tmp/tv/efficientnet_b0.onnx; FIRELIGHT_BENCH_TORCHVISION=/tmp/tv cargo bench --bench onnx efficientnet_b0
"""
import argparse
import os

MODELS = ["efficientnet_b0", "regnet_y_400mf", "convnext_tiny"]


def build_model(name):
    import torch
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    for m in model.modules():  # Captum needs out-of-place activations; ONNX does not care
        if hasattr(m, "inplace"):
            m.inplace = False
    return model


def main():
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for NAME.onnx")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {MODELS}")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in args.models.split(","):
        model = build_model(name)
        path = os.path.join(args.out, f"{name}.onnx")
        torch.onnx.export(
            model,
            torch.zeros(1, 3, 224, 224),
            path,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        print(path)


if __name__ == "__main__":
    main()
