#!/usr/bin/python3
"""ort_export: writes a classifier model directory as ONNX for the ONNX Runtime
rows of `make bench`, the way a user would export a trained Fastformer: the
PyTorch reference module (tools/fastformer.py) with the directory's own
safetensors weights (the same weights the C engine loads), torch.onnx.export,
opset 14, dynamic batch and length.

The graph takes input_ids (int64, batch x length, 0 = padding) and returns
pooled (batch x D, the encoder's pooled vectors, what bench_engine times) and
probabilities (batch x labels, softmax of the classifier head).

With --probe in place of MODEL_DIR it writes a graph with the same input and
outputs but only two element-wise ops, to measure what one run costs outside
the model (the node binding, tensor wrapping, the session's bookkeeping).
With --products it writes the model's weight products alone (Products), to
time ONNX Runtime's MatMul kernels (MLAS) on them.

usage: /usr/bin/python3 ort_export.py [--products] MODEL_DIR|--probe OUT.onnx
Needs Debian's python3-torch; the ONNX package is not needed."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from torch_bench import load  # noqa: E402

OPSET = 14


class PooledAndProbabilities(torch.nn.Module):
    """FastformerClassifier's encode and forward as one graph with two outputs."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids):
        pooled = self.classifier.encode(input_ids)
        return pooled, torch.softmax(self.classifier.dense_linear(pooled), dim=-1)


class Probe(torch.nn.Module):
    """Same signature, next to no work: the per-run cost outside the model."""

    def forward(self, input_ids):
        x = input_ids.float()
        return x + 1.0, x * 2.0


class Products(torch.nn.Module):
    """The model's weight products alone, as the full graph runs them (MatMul,
    MLAS's packed SGEMM, on B*L rows): per layer query, key, transform,
    attention.output.dense, intermediate and output, each on the word
    embeddings of the ids (intermediate's output feeds output), so that every
    product has its real shape and weights, and values stay far from
    denormals. No bias; besides the gather, only reshapes and slices."""

    def __init__(self, classifier):
        super().__init__()
        self.embedding = classifier.word_embedding
        ws = []
        for layer in classifier.fastformer_model.encoders:
            a = layer.attention
            ws += [a.self.query.weight, a.self.key.weight, a.self.transform.weight,
                   a.output.dense.weight, layer.intermediate.dense.weight, layer.output.dense.weight]
        self.ws = torch.nn.ParameterList([torch.nn.Parameter(w.detach().t().contiguous())
                                          for w in ws])

    def forward(self, input_ids):
        x = self.embedding(input_ids).reshape(-1, self.ws[0].shape[0])
        outs = []
        for i in range(0, len(self.ws), 6):
            outs += [x @ w for w in self.ws[i:i + 4]]
            outs.append((x @ self.ws[i + 4]) @ self.ws[i + 5])
        # Only each product's first row leaves the graph (ONNX Runtime still
        # computes every product in full), so outputs cost nothing to copy.
        first = torch.cat([o[:1] for o in outs], 1)
        return first, first


def export(model_dir, out_path, products=False):
    """Writes out_path atomically (a partial file never looks finished);
    model_dir None writes the probe graph; products: the Products graph."""
    if model_dir is None:
        graph = Probe()
    else:
        classifier = load(model_dir)[0]
        graph = (Products if products else PooledAndProbabilities)(classifier).eval()
    example = torch.ones(2, 8, dtype=torch.long)
    tmp = out_path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(graph, (example,), tmp, opset_version=OPSET,
                          input_names=["input_ids"], output_names=["pooled", "probabilities"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "length"},
                                        "pooled": {0: "batch"}, "probabilities": {0: "batch"}})
    os.replace(tmp, out_path)


def main():
    args = sys.argv[1:]
    products = args[:1] == ["--products"]
    if products:
        args = args[1:]
    if len(args) != 2:
        sys.exit("usage: ort_export.py [--products] MODEL_DIR|--probe OUT.onnx")
    torch.set_num_threads(1)
    export(None if args[0] == "--probe" else args[0], args[1], products)


if __name__ == "__main__":
    main()
