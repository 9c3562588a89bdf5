"""PyTorch eager on the same GPU, for basin-bench's et-image-step-cuda-b32/-b256 and
energy-attention-grad-cuda: the image Energy Transformer training step (32x32x3 images, patch 4
-> 64 patches + CLS, D=128, 4 heads x 32, M=512 ReLU^2 memories, T=12, alpha=0.1, attention over
B != C, half the patches masked, MSE over them, Adam lr 1e-4) at batch 32 and 256, and the
attention energy's gradient dE/dg through autograd at batch 256. The inner gradient is
torch.autograd.grad with create_graph=True, as in the reference ET code. Prints one JSON object.

usage: python3 tools/bench/torch_et_cuda.py [--steps 20]
"""
import argparse
import json
import math

import torch
import torch.nn as nn

from torch_cuda import seconds


class EnergyLayerNorm(nn.Module):
    """gamma (x - mean) / sqrt(var + eps) + delta; scalar gamma, vector delta."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(()))
        self.delta = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        centred = x - x.mean(-1, keepdim=True)
        var = (centred * centred).mean(-1, keepdim=True)
        return self.gamma * centred / torch.sqrt(var + self.eps) + self.delta


class EnergyBlock(nn.Module):
    """E(g) = -1/beta sum_h sum_C logsumexp_{B != C} beta K_hB.Q_hC - 1/2 sum relu(Xi g)^2."""

    def __init__(self, dim=128, heads=4, head_dim=32, memories=512):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.beta = 1.0 / math.sqrt(head_dim)
        self.norm = EnergyLayerNorm(dim)
        self.wq = nn.Parameter(torch.randn(heads, head_dim, dim) * 0.002)
        self.wk = nn.Parameter(torch.randn(heads, head_dim, dim) * 0.002)
        self.xi = nn.Parameter(torch.randn(memories, dim) * 0.02)

    def attention_energy(self, g):
        b, n, d = g.shape
        q = (g @ self.wq.reshape(-1, d).t()).reshape(b, n, self.heads, -1).transpose(1, 2)
        k = (g @ self.wk.reshape(-1, d).t()).reshape(b, n, self.heads, -1).transpose(1, 2)
        scores = self.beta * (q @ k.transpose(-1, -2))
        eye = torch.eye(n, dtype=torch.bool, device=g.device)
        scores = scores.masked_fill(eye, float("-inf"))
        return -(1.0 / self.beta) * torch.logsumexp(scores, -1).sum()

    def energy(self, g):
        hidden = torch.relu(g @ self.xi.t())
        return self.attention_energy(g) - 0.5 * (hidden * hidden).sum()

    def forward(self, x, steps, alpha):
        for _ in range(steps):
            g = self.norm(x)
            (grad,) = torch.autograd.grad(self.energy(g), g, create_graph=True)
            x = x - alpha * grad
        return x


class ImageET(nn.Module):
    def __init__(self, size=32, patch=4, dim=128, steps=12, alpha=0.1):
        super().__init__()
        self.patch, self.steps, self.alpha = patch, steps, alpha
        self.patches = (size // patch) ** 2
        values = 3 * patch * patch
        self.encoder = nn.Linear(values, dim)
        self.decoder = nn.Linear(dim, values)
        self.cls = nn.Parameter(torch.randn(dim) * 0.002)
        self.mask_token = nn.Parameter(torch.randn(dim) * 0.002)
        self.pos = nn.Parameter(torch.randn(self.patches + 1, dim) * 0.002)
        self.block = EnergyBlock(dim)

    def patchify(self, img):
        b, c, s, _ = img.shape
        k, p = s // self.patch, self.patch
        return img.reshape(b, c, k, p, k, p).permute(0, 2, 4, 1, 3, 5).reshape(b, k * k, c * p * p)

    def loss(self, img, mask):
        patches = self.patchify(img)
        tokens = self.encoder(patches)
        tokens = torch.where(mask[..., None], self.mask_token.expand_as(tokens), tokens)
        x = torch.cat([self.cls.expand(tokens.shape[0], 1, -1), tokens], 1) + self.pos
        x = self.block(x, self.steps, self.alpha)
        pred = self.decoder(self.block.norm(x[:, 1:]))
        m = mask[..., None].to(pred.dtype)
        return (((pred - patches) ** 2) * m).sum() / (m.sum() * pred.shape[-1])


def gpu_ms(fn, reps):
    """Median milliseconds of fn on the GPU (torch_cuda.seconds: CUDA events, 3 warm-up calls)."""
    return seconds(fn, reps) * 1e3


def image_step_ms(batch, steps):
    torch.manual_seed(0)
    model = ImageET().cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    coarse = torch.rand(512, 3, 8, 8, device="cuda")
    pool = coarse.repeat_interleave(4, 2).repeat_interleave(4, 3)
    cursor = [0]

    def step():
        img = pool[cursor[0]:cursor[0] + batch]
        cursor[0] = (cursor[0] + batch) % 512
        order = torch.rand(batch, model.patches, device="cuda").argsort(1)[:, : model.patches // 2]
        mask = torch.zeros(batch, model.patches, dtype=torch.bool, device="cuda")
        mask.scatter_(1, order, True)
        loss = model.loss(img, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()

    return gpu_ms(step, steps)


def attention_grad_ms(reps):
    torch.manual_seed(0)
    block = EnergyBlock().cuda()
    g = torch.rand(256, 65, 128, device="cuda", requires_grad=True)

    def grad():
        torch.autograd.grad(block.attention_energy(g), g)

    return gpu_ms(grad, reps)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(json.dumps({
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(),
        "et_image_step_b32_ms": image_step_ms(32, args.steps),
        "et_image_step_b256_ms": image_step_ms(256, args.steps),
        "attention_grad_b256_ms": attention_grad_ms(50),
    }))


if __name__ == "__main__":
    main()
