"""configs/mlp_mnist.toml in PyTorch, for comparing training throughput with basin-train: an MLP
784-256-128-10 (ReLU, dropout 0.1) trained with AdamW (lr 2e-3, weight decay 0.01), 100 warmup
steps then cosine, batch 64, 12 epochs over the first 8,000 images of the MNIST test file; tested
on the last 2,000. Prints one JSON object: training seconds (the 1500 steps only), steps/s and
test accuracy. Usage: torch_mlp_mnist.py MNIST_DIR [THREADS]"""
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch


def read_idx(path):
    data = gzip.open(path).read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    root = sys.argv[1]
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    x = torch.tensor(read_idx(os.path.join(root, "t10k-images-idx3-ubyte.gz")), dtype=torch.float32)
    x = x.div(255).reshape(-1, 784)
    y = torch.tensor(read_idx(os.path.join(root, "t10k-labels-idx1-ubyte.gz")), dtype=torch.int64)
    x_train, y_train, x_test, y_test = x[:8000], y[:8000], x[-2000:], y[-2000:]
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Dropout(0.1),
        torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Dropout(0.1),
        torch.nn.Linear(128, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    total, warmup, base = 1500, 100, 2e-3

    def lr(step):
        if step < warmup:
            return base * step / warmup
        return base * (1 + math.cos(math.pi * min(1.0, (step - warmup) / (total - warmup)))) / 2

    start = time.perf_counter()
    step = 0
    for _ in range(12):
        order = torch.randperm(8000)
        for b in range(125):
            idx = order[b * 64:(b + 1) * 64]
            for group in opt.param_groups:
                group["lr"] = lr(step)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            step += 1
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "steps": total, "seconds": seconds, "steps_per_s": total / seconds,
                      "test_accuracy": accuracy}))


if __name__ == "__main__":
    main()
