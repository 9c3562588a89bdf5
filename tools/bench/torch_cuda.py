"""PyTorch on the same GPU, for the CUDA benchmarks of basin-bench: 4096^3 float32 matmul (TF32
off, then on) and elementwise add/exp over 2^28 floats. Prints one JSON object."""
import json
import statistics

import torch


def seconds(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def main():
    n = 4096
    a, b = torch.rand(n, n, device="cuda"), torch.rand(n, n, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    t = seconds(lambda: a @ b)
    torch.backends.cuda.matmul.allow_tf32 = True
    t_tf32 = seconds(lambda: a @ b)
    m = 1 << 28
    x, y = torch.rand(m, device="cuda"), torch.rand(m, device="cuda")
    t_add = seconds(lambda: x + y)
    t_exp = seconds(lambda: torch.exp(x))
    print(json.dumps({"torch": torch.__version__, "matmul_tflops": 2 * n**3 / t / 1e12,
                      "matmul_tf32_tflops": 2 * n**3 / t_tf32 / 1e12,
                      "add_gbps": 12 * m / t_add / 1e9, "exp_gbps": 8 * m / t_exp / 1e9}))


if __name__ == "__main__":
    main()
