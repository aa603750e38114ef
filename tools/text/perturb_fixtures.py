#!/usr/bin/env python3
"""Captum 0.9's FeatureAblation over the tokens of the bundled sentiment model: each token (one
feature per token, special tokens included) replaced by [PAD] or [MASK], the attention mask
carried; tests/fixtures/text/feature_ablation_<replacement>_<i>.npy ([tokens]) for the sentences
of sentences.json, toward their predicted class. The torch model is rebuilt as
tools/text/bench_captum_text.py does (the encoder's weights, the head read from the ONNX file).

    /tmp/fl/bin/python tools/text/perturb_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_captum_text import model_from_onnx  # noqa: E402
from make_text_model import FIXTURES, OUT  # noqa: E402


def main():
    from captum.attr import FeatureAblation
    from tokenizers import Tokenizer
    model = model_from_onnx()
    vocab = Tokenizer.from_file(os.path.join(OUT, "tokenizer.json")).get_vocab()
    with open(os.path.join(FIXTURES, "sentences.json")) as f:
        cases = json.load(f)["cases"]
    for i, case in enumerate(cases):
        ids = torch.tensor([case["ids"]])
        mask, types = torch.ones_like(ids), torch.zeros_like(ids)
        for name, token in [("pad", "[PAD]"), ("mask", "[MASK]")]:
            attr = FeatureAblation(model).attribute(
                ids, baselines=vocab[token], target=case["target"],
                additional_forward_args=(mask, types))
            np.save(os.path.join(FIXTURES, f"feature_ablation_{name}_{i}.npy"),
                    attr[0].detach().numpy().astype(np.float32))
        print(case["text"], attr[0].tolist())


if __name__ == "__main__":
    main()
