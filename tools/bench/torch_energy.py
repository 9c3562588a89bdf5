"""The energy benchmark of basin-bench in PyTorch: E = -sum_b logsumexp(beta X x_b), then d/dX of
|dE/dx|^2 (a gradient of a gradient). Prints one JSON object with the median ms per step for 1
and 2 threads. Usage: torch_energy.py M D B BETA"""
import json
import statistics
import sys
import time

import torch


def main():
    m, d, b, beta = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    torch.manual_seed(0)
    memories = torch.randn(m, d)
    x = torch.randn(b, d)
    out = {"torch_version": torch.__version__}
    for threads in (1, 2):
        torch.set_num_threads(threads)

        def step():
            mem = memories.clone().requires_grad_(True)
            s = x.clone().requires_grad_(True)
            energy = -torch.logsumexp(beta * (s @ mem.T), dim=-1).sum()
            (g,) = torch.autograd.grad(energy, s, create_graph=True)
            (gm,) = torch.autograd.grad((g * g).sum(), mem)
            return gm

        for _ in range(5):
            step()
        times = []
        for _ in range(31):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        out[f"threads{threads}"] = {"ms": 1e3 * statistics.median(times)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
