// CUDA kernels of the energy layers' closed-form gradients (core/prims/energy.h).
//
// Attention: cuBLAS projects every token onto every head (Q, K: (B·N, H·Y)); a kernel makes
// U_C = Σ_B P_CB K_B and V_B = Σ_C P_CB Q_C, and cuBLAS maps both back, dE/dg = −(U W_Q + V W_K).
// When a (b, h) pair's Q, K and scores fit in shared memory, one block per pair does it all
// there. Otherwise two kernels in the manner of flash attention, one warp per token, never hold
// the N × N scores: the row pass walks the keys of each query with an online log-sum-exp and
// writes U and the row's log-normaliser; the column pass walks the queries of each key, rebuilds
// P_CB = exp(β Q_C·K_B − lse_C) and writes V. Hopfield: two cuBLAS products around a ReLU or
// softmax pass.
#include <cuda/std/limits>

#include <cmath>
#include <cstdint>

#include "backends/cuda/blas.h"
#include "backends/cuda/common.cuh"
#include "core/allocator.h"
#include "core/prims/energy.h"

namespace basin::prims {
namespace {
using cuda::gemm;

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
/// Head sizes up to kMaxLanes · 32 run in the kernels (each lane keeps kMaxLanes coordinates);
/// larger heads take the ops fallback.
constexpr int kMaxLanes = 4;

template <class T>
__device__ T warp_sum(T v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ inline float exp_of(float x) { return expf(x); }
__device__ inline double exp_of(double x) { return exp(x); }
__device__ inline float log_of(float x) { return logf(x); }
__device__ inline double log_of(double x) { return log(x); }

/// Shapes and the attention mask of one call. Rows of Q and K are tokens (b, n) with the heads
/// side by side: element (b, n, h, y) at (b·N + n)·HY + h·Y + y.
struct AttentionDims {
  int batch, tokens, heads, head_dim;
  const bool* mask;           // mask[b·mask_stride + C·N + B]: query C may attend to key B
  int64_t mask_batch_stride;  // N·N for a (B, N, N) mask, 0 for one shared (N, N) mask
  bool exclude_self;

  __device__ bool allowed(int b, int query, int key) const {
    if (exclude_self && query == key) return false;
    return mask == nullptr ||
           mask[b * mask_batch_stride + static_cast<int64_t>(query) * tokens + key];
  }
};

/// Softmax in place of one row of n scores by one warp (every lane calls it), over the keys that
/// allowed(key) admits: the others become 0, and a row with no allowed key all 0.
template <class T, class Allowed>
__device__ void warp_masked_softmax(T* row, int n, int lane, Allowed allowed) {
  const T ninf = -::cuda::std::numeric_limits<T>::infinity();
  T top = ninf;
  for (int key = lane; key < n; key += kWarp) {
    if (allowed(key)) top = row[key] > top ? row[key] : top;
  }
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const T other = __shfl_xor_sync(0xffffffffu, top, o);
    top = other > top ? other : top;
  }
  T total = 0;
  for (int key = lane; key < n; key += kWarp) {
    const T e = top != ninf && allowed(key) ? exp_of(row[key] - top) : T(0);
    row[key] = e;
    total += e;
  }
  total = warp_sum(total);
  const T inv = total > 0 ? T(1) / total : T(0);
  for (int key = lane; key < n; key += kWarp) row[key] *= inv;
}

/// Loads the head-h coordinates of a row into per-lane registers (0 past head_dim).
template <class T>
__device__ void load_row(const T* row, int head_dim, int lane, T (&v)[kMaxLanes]) {
#pragma unroll
  for (int i = 0; i < kMaxLanes; ++i) {
    const int y = lane + i * kWarp;
    v[i] = y < head_dim ? row[y] : T(0);
  }
}

template <class T>
__device__ T dot(const T (&a)[kMaxLanes], const T (&b)[kMaxLanes]) {
  T s = 0;
#pragma unroll
  for (int i = 0; i < kMaxLanes; ++i) s += a[i] * b[i];
  return warp_sum(s);
}

/// Row pass: one warp per (b, h, query C). u (B·N, HY) gets Σ_B P_CB K_B (unless u is null);
/// lse (B, H, N) gets the row's log Σ_B exp(s_CB) (−inf for a query with no allowed key, whose u
/// row is 0).
template <class T>
__global__ void attention_rows(const T* q, const T* k, const T* beta, T* u, T* lse,
                               AttentionDims d) {
  const int lane = threadIdx.x % kWarp;
  const int query = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  const int bh = blockIdx.y, b = bh / d.heads, h = bh % d.heads;
  if (query >= d.tokens) return;
  const int64_t hy = static_cast<int64_t>(d.heads) * d.head_dim;
  const int64_t base =
      static_cast<int64_t>(b) * d.tokens * hy + static_cast<int64_t>(h) * d.head_dim;
  const T bh_beta = beta[h];
  T qc[kMaxLanes], kb[kMaxLanes], acc[kMaxLanes] = {};
  load_row(q + base + query * hy, d.head_dim, lane, qc);
  const T ninf = -::cuda::std::numeric_limits<T>::infinity();
  T top = ninf, total = 0;
  for (int key = 0; key < d.tokens; ++key) {
    if (!d.allowed(b, query, key)) continue;
    load_row(k + base + key * hy, d.head_dim, lane, kb);
    const T s = bh_beta * dot(qc, kb);
    if (s > top) {  // rescale what was summed under the old maximum
      const T r = top == ninf ? T(0) : exp_of(top - s);
      total *= r;
#pragma unroll
      for (int i = 0; i < kMaxLanes; ++i) acc[i] *= r;
      top = s;
    }
    const T p = exp_of(s - top);
    total += p;
#pragma unroll
    for (int i = 0; i < kMaxLanes; ++i) acc[i] += p * kb[i];
  }
  const T inv = total > 0 ? T(1) / total : T(0);
  if (u != nullptr) {
    T* out = u + base + query * hy;
#pragma unroll
    for (int i = 0; i < kMaxLanes; ++i) {
      const int y = lane + i * kWarp;
      if (y < d.head_dim) out[y] = acc[i] * inv;
    }
  }
  if (lane == 0) {
    lse[static_cast<int64_t>(bh) * d.tokens + query] = total > 0 ? top + log_of(total) : ninf;
  }
}

/// Column pass: one warp per (b, h, key B). v (B·N, HY) gets Σ_C P_CB Q_C with P rebuilt from
/// the row pass's log-normalisers.
template <class T>
__global__ void attention_cols(const T* q, const T* k, const T* beta, const T* lse, T* v,
                               AttentionDims d) {
  const int lane = threadIdx.x % kWarp;
  const int key = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  const int bh = blockIdx.y, b = bh / d.heads, h = bh % d.heads;
  if (key >= d.tokens) return;
  const int64_t hy = static_cast<int64_t>(d.heads) * d.head_dim;
  const int64_t base =
      static_cast<int64_t>(b) * d.tokens * hy + static_cast<int64_t>(h) * d.head_dim;
  const T bh_beta = beta[h];
  const T* row_lse = lse + static_cast<int64_t>(bh) * d.tokens;
  T kb[kMaxLanes], qc[kMaxLanes], acc[kMaxLanes] = {};
  load_row(k + base + key * hy, d.head_dim, lane, kb);
  for (int query = 0; query < d.tokens; ++query) {
    if (!d.allowed(b, query, key)) continue;
    load_row(q + base + query * hy, d.head_dim, lane, qc);
    const T p = exp_of(bh_beta * dot(qc, kb) - row_lse[query]);
#pragma unroll
    for (int i = 0; i < kMaxLanes; ++i) acc[i] += p * qc[i];
  }
  T* out = v + base + key * hy;
#pragma unroll
  for (int i = 0; i < kMaxLanes; ++i) {
    const int y = lane + i * kWarp;
    if (y < d.head_dim) out[y] = acc[i];
  }
}

/// One block per (b, h) whose Q, K and N × N probabilities fit in shared memory (the image ET's
/// 65 tokens): scores, masked softmax and both products U = P K, V = Pᵀ Q without leaving the
/// multiprocessor. Rows are padded by one element so that threads walking a column of Q or K hit
/// different banks.
template <class T>
__global__ void attention_block(const T* q, const T* k, const T* beta, T* u, T* v,
                                AttentionDims d) {
  extern __shared__ unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const int n = d.tokens, y = d.head_dim, ys = y + 1, ps = n + 1;
  T* qs = smem;         // n × ys
  T* ks = qs + n * ys;  // n × ys
  T* p = ks + n * ys;   // n × ps
  const int bh = blockIdx.x, b = bh / d.heads, h = bh % d.heads;
  const int64_t hy = static_cast<int64_t>(d.heads) * y;
  const int64_t base = static_cast<int64_t>(b) * n * hy + static_cast<int64_t>(h) * y;
  for (int i = threadIdx.x; i < n * y; i += blockDim.x) {
    const int r = i / y, c = i % y;
    qs[r * ys + c] = q[base + r * hy + c];
    ks[r * ys + c] = k[base + r * hy + c];
  }
  __syncthreads();
  const T bh_beta = beta[h];
  for (int i = threadIdx.x; i < n * n; i += blockDim.x) {
    const int query = i / n, key = i % n;
    T s = 0;
    for (int c = 0; c < y; ++c) s += qs[query * ys + c] * ks[key * ys + c];
    p[query * ps + key] = bh_beta * s;
  }
  __syncthreads();
  // Masked softmax of each row, a warp per row.
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  for (int query = warp; query < n; query += warps) {
    warp_masked_softmax(p + query * ps, n, lane, [&](int key) { return d.allowed(b, query, key); });
  }
  __syncthreads();
  for (int i = threadIdx.x; i < n * y; i += blockDim.x) {
    const int r = i / y, c = i % y;
    T su = 0, sv = 0;
    for (int j = 0; j < n; ++j) {
      su += p[r * ps + j] * ks[j * ys + c];  // U_r = Σ_B P_rB K_B
      sv += p[j * ps + r] * qs[j * ys + c];  // V_r = Σ_C P_Cr Q_C
    }
    u[base + r * hy + c] = su;
    v[base + r * hy + c] = sv;
  }
}

/// The attention energy from the row pass's log-normalisers: out[0] = −Σ lse_{bhC} / β_h over
/// the finite entries, by one block (a thread per strided share, then a tree in shared memory).
template <class T>
__global__ void energy_from_row_lse(const T* lse, const T* beta, T* out, int64_t rows_per_head,
                                    int heads, int64_t total) {
  __shared__ double partial[cuda::kBlock];
  double s = 0;
  const T ninf = -::cuda::std::numeric_limits<T>::infinity();
  for (int64_t i = threadIdx.x; i < total; i += blockDim.x) {
    const T v = lse[i];
    if (v != ninf)
      s += static_cast<double>(v) / static_cast<double>(beta[(i / rows_per_head) % heads]);
  }
  partial[threadIdx.x] = s;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = static_cast<T>(-partial[0]);
}

/// Shared memory attention_block needs, in bytes.
template <class T>
size_t block_smem_bytes(int64_t n, int64_t y) {
  return static_cast<size_t>(2 * n * (y + 1) + n * (n + 1)) * sizeof(T);
}

/// The most shared memory a block may take by default (more needs an opt-in per kernel).
constexpr size_t kBlockSmemLimit = 48 * 1024;

/// EnergyAttentionCoreVjp for one (b, h) pair per block, everything in shared memory: P from the
/// scores, P̄ = Ū Kᵀ + Q V̄ᵀ turned into S̄ = P ⊙ (P̄ − rowsum(P ⊙ P̄)) in place, then the five
/// outputs U = P K, V = Pᵀ Q, Q̄ = P V̄ + β S̄ K, K̄ = Pᵀ Ū + β S̄ᵀ Q and R = S̄ K. Rows of the
/// inputs are [Q | K] and [Ū | V̄] (2·HY), rows of the output [U | V | Q̄ | K̄ | R] (5·HY).
template <class T>
__global__ void attention_block_vjp(const T* qk, const T* uv, const T* beta, T* out,
                                    AttentionDims d) {
  extern __shared__ unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const int n = d.tokens, y = d.head_dim, ys = y + 1, ps = n + 1;
  T* qs = smem;
  T* ks = qs + n * ys;
  T* us = ks + n * ys;
  T* vs = us + n * ys;
  T* p = vs + n * ys;  // n × ps: P
  T* sb = p + n * ps;  // n × ps: P̄, then S̄
  const int bh = blockIdx.x, b = bh / d.heads, h = bh % d.heads;
  const int64_t hy = static_cast<int64_t>(d.heads) * y;
  const int64_t row0 = static_cast<int64_t>(b) * n;  // the block's first token row
  for (int i = threadIdx.x; i < n * y; i += blockDim.x) {
    const int r = i / y, c = i % y;
    const int64_t at = (row0 + r) * 2 * hy + h * y + c;
    qs[r * ys + c] = qk[at];
    ks[r * ys + c] = qk[at + hy];
    us[r * ys + c] = uv[at];
    vs[r * ys + c] = uv[at + hy];
  }
  __syncthreads();
  const T bh_beta = beta[h];
  for (int i = threadIdx.x; i < n * n; i += blockDim.x) {
    const int query = i / n, key = i % n;
    T s = 0, pb = 0;
    for (int c = 0; c < y; ++c) {
      s += qs[query * ys + c] * ks[key * ys + c];
      pb += us[query * ys + c] * ks[key * ys + c] + qs[query * ys + c] * vs[key * ys + c];
    }
    p[query * ps + key] = bh_beta * s;
    sb[query * ps + key] = pb;
  }
  __syncthreads();
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  for (int query = warp; query < n; query += warps) {
    T* row = p + query * ps;
    T* srow = sb + query * ps;
    warp_masked_softmax(row, n, lane, [&](int key) { return d.allowed(b, query, key); });
    T dot_pp = 0;
    for (int key = lane; key < n; key += kWarp) dot_pp += row[key] * srow[key];
    dot_pp = warp_sum(dot_pp);
    for (int key = lane; key < n; key += kWarp) srow[key] = row[key] * (srow[key] - dot_pp);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < n * y; i += blockDim.x) {
    const int r = i / y, c = i % y;
    T u = 0, v = 0, qb = 0, kb = 0, rk = 0, sq = 0;
    for (int j = 0; j < n; ++j) {
      const T prj = p[r * ps + j], pjr = p[j * ps + r];
      const T srj = sb[r * ps + j], sjr = sb[j * ps + r];
      u += prj * ks[j * ys + c];
      v += pjr * qs[j * ys + c];
      qb += prj * vs[j * ys + c];
      kb += pjr * us[j * ys + c];
      rk += srj * ks[j * ys + c];
      sq += sjr * qs[j * ys + c];
    }
    T* row = out + (row0 + r) * 5 * hy + h * y + c;
    row[0] = u;
    row[hy] = v;
    row[2 * hy] = qb + bh_beta * rk;
    row[3 * hy] = kb + bh_beta * sq;
    row[4 * hy] = rk;
  }
}

/// Shared memory attention_block_vjp needs, in bytes.
template <class T>
size_t block_vjp_smem_bytes(int64_t n, int64_t y) {
  return static_cast<size_t>(4 * n * (y + 1) + 2 * n * (n + 1)) * sizeof(T);
}

/// The most shared memory one block of `kernel` may use on `device`, raising the kernel's limit
/// from the default 48 KB to the device's opt-in maximum the first time.
template <class Kernel>
size_t opt_in_smem(Kernel kernel, int device) {
  int limit = 0;
  BASIN_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  BASIN_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, limit));
  return static_cast<size_t>(limit);
}

/// out (rows, hy) += bias (hy) on every row.
template <class T>
__global__ void add_row_bias(T* out, const T* bias, int64_t rows, int64_t hy) {
  const int64_t n = rows * hy;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] += bias[i % hy];
  }
}

template <class T>
__global__ void relu_inplace(T* x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    x[i] = x[i] > T(0) ? x[i] : T(0);
  }
}

/// softmax(β x) of each of `rows` rows of m elements in place, one warp per row, the sum in
/// double as on the CPU. NaNs propagate; a row of −inf becomes zeros.
template <class T>
__global__ void softmax_rows_inplace(T* x, const T* beta, int64_t rows, int64_t m) {
  const int lane = threadIdx.x % kWarp;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (r >= rows) return;
  T* row = x + r * m;
  const T scale_in = *beta;
  for (int64_t j = lane; j < m; j += kWarp) row[j] *= scale_in;
  const T ninf = -::cuda::std::numeric_limits<T>::infinity();
  T top = ninf;
  for (int64_t j = lane; j < m; j += kWarp) top = row[j] > top || row[j] != row[j] ? row[j] : top;
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const T other = __shfl_xor_sync(0xffffffffu, top, o);
    top = other > top || other != other ? other : top;
  }
  const T shift = top == ninf ? T(0) : top;
  double total = 0;
  for (int64_t j = lane; j < m; j += kWarp) {
    const T e = exp_of(row[j] - shift);
    row[j] = e;
    total += static_cast<double>(e);
  }
  total = warp_sum(total);
  const T scale = total > 0 ? static_cast<T>(1.0 / total) : T(0);
  for (int64_t j = lane; j < m; j += kWarp) row[j] *= scale;
}

/// A device tensor's elements (Tensor::data<T>() is for host tensors).
template <class T>
T* dev(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

template <class T>
T* scratch(std::shared_ptr<Storage>& keep, int64_t count, Device device) {
  keep = allocate(static_cast<size_t>(count) * sizeof(T), device);
  return static_cast<T*>(keep->data);
}

/// Q = g W_Qᵀ (+ b_Q) and K = g W_Kᵀ (+ b_K) into q and k (B·N × H·Y each), and the sizes and
/// mask of the call for the attention kernels.
template <class T>
AttentionDims project_attention(const Tensor& g, const Tensor& wq, const Tensor& wk,
                                const Tensor& bq, const Tensor& bk, const Tensor& mask,
                                bool exclude_self, T* q, T* k, int ordinal) {
  const int64_t batch = g.shape(0), n = g.shape(1), dim = g.shape(2);
  const int64_t heads = wq.shape(0), head_dim = wq.shape(1), hy = heads * head_dim;
  const int64_t rows = batch * n;
  gemm<T>(ordinal, false, true, rows, hy, dim, T(1), dev<T>(g), dim, dev<T>(wq), dim, T(0), q, hy);
  gemm<T>(ordinal, false, true, rows, hy, dim, T(1), dev<T>(g), dim, dev<T>(wk), dim, T(0), k, hy);
  if (bq.defined()) {
    add_row_bias<<<cuda::grid_for(rows * hy), cuda::kBlock, 0, cuda::stream()>>>(q, dev<T>(bq),
                                                                                 rows, hy);
    BASIN_CUDA_CHECK_LAUNCH();
    add_row_bias<<<cuda::grid_for(rows * hy), cuda::kBlock, 0, cuda::stream()>>>(k, dev<T>(bk),
                                                                                 rows, hy);
    BASIN_CUDA_CHECK_LAUNCH();
  }
  return {static_cast<int>(batch),
          static_cast<int>(n),
          static_cast<int>(heads),
          static_cast<int>(head_dim),
          mask.defined() ? dev<bool>(mask) : nullptr,
          mask.defined() && mask.ndim() == 3 ? n * n : 0,
          exclude_self};
}

template <class T>
void energy_attention_grad_cuda(const Tensor& g, const Tensor& wq, const Tensor& wk,
                                const Tensor& beta, const Tensor& bq, const Tensor& bk,
                                const Tensor& mask, bool exclude_self, Tensor& out) {
  const int ordinal = out.device().index;
  const int64_t batch = g.shape(0), n = g.shape(1), dim = g.shape(2);
  const int64_t heads = wq.shape(0), head_dim = wq.shape(1), hy = heads * head_dim;
  const int64_t rows = batch * n;
  T* o = dev<T>(out);
  // Scratch: Q, K, U, V (rows × HY each). Freed on return; later users of the memory are
  // ordered after these kernels on basin's one stream.
  std::shared_ptr<Storage> keep_qkuv;
  T* q = scratch<T>(keep_qkuv, 4 * rows * hy, out.device());
  T* k = q + rows * hy;
  T* u = k + rows * hy;
  T* v = u + rows * hy;
  const AttentionDims d =
      project_attention<T>(g, wq, wk, bq, bk, mask, exclude_self, q, k, ordinal);
  if (block_smem_bytes<T>(n, head_dim) <= kBlockSmemLimit) {
    attention_block<T>
        <<<static_cast<unsigned>(batch * heads), kWarpsPerBlock * kWarp,
           block_smem_bytes<T>(n, head_dim), cuda::stream()>>>(q, k, dev<T>(beta), u, v, d);
    BASIN_CUDA_CHECK_LAUNCH();
  } else {
    // Too many tokens for one block: the two flash-style passes over the keys, then the queries.
    std::shared_ptr<Storage> keep_lse;
    T* lse = scratch<T>(keep_lse, batch * heads * n, out.device());
    const dim3 grid(static_cast<unsigned>((n + kWarpsPerBlock - 1) / kWarpsPerBlock),
                    static_cast<unsigned>(batch * heads));
    attention_rows<T>
        <<<grid, kWarpsPerBlock * kWarp, 0, cuda::stream()>>>(q, k, dev<T>(beta), u, lse, d);
    BASIN_CUDA_CHECK_LAUNCH();
    attention_cols<T>
        <<<grid, kWarpsPerBlock * kWarp, 0, cuda::stream()>>>(q, k, dev<T>(beta), lse, v, d);
    BASIN_CUDA_CHECK_LAUNCH();
  }
  gemm<T>(ordinal, false, false, rows, dim, hy, T(-1), u, hy, dev<T>(wq), dim, T(0), o, dim);
  gemm<T>(ordinal, false, false, rows, dim, hy, T(-1), v, hy, dev<T>(wk), dim, T(1), o, dim);
}

template <class T>
void energy_attention_value_cuda(const Tensor& g, const Tensor& wq, const Tensor& wk,
                                 const Tensor& beta, const Tensor& bq, const Tensor& bk,
                                 const Tensor& mask, bool exclude_self, Tensor& out) {
  const int64_t batch = g.shape(0), n = g.shape(1);
  const int64_t heads = wq.shape(0), hy = heads * wq.shape(1);
  const int64_t rows = batch * n;
  // Scratch: Q and K (rows × HY each), then the (B, H, N) log-normalisers.
  std::shared_ptr<Storage> keep;
  T* q = scratch<T>(keep, 2 * rows * hy + batch * heads * n, out.device());
  T* k = q + rows * hy;
  T* lse = k + rows * hy;
  const AttentionDims d =
      project_attention<T>(g, wq, wk, bq, bk, mask, exclude_self, q, k, out.device().index);
  const dim3 grid(static_cast<unsigned>((n + kWarpsPerBlock - 1) / kWarpsPerBlock),
                  static_cast<unsigned>(batch * heads));
  attention_rows<T>
      <<<grid, kWarpsPerBlock * kWarp, 0, cuda::stream()>>>(q, k, dev<T>(beta), nullptr, lse, d);
  BASIN_CUDA_CHECK_LAUNCH();
  energy_from_row_lse<T><<<1, cuda::kBlock, 0, cuda::stream()>>>(
      lse, dev<T>(beta), dev<T>(out), n, static_cast<int>(heads), batch * heads * n);
  BASIN_CUDA_CHECK_LAUNCH();
}

template <class T>
void hopfield_energy_grad_cuda(const Tensor& g, const Tensor& xi, const Tensor& beta, Tensor& out) {
  const int ordinal = out.device().index;
  const int64_t d = g.shape(-1), rows = g.numel() / d, m = xi.shape(0);
  std::shared_ptr<Storage> keep;
  T* h = scratch<T>(keep, rows * m, out.device());
  gemm<T>(ordinal, false, true, rows, m, d, T(1), dev<T>(g), d, dev<T>(xi), d, T(0), h, m);
  if (beta.defined()) {
    softmax_rows_inplace<T>
        <<<static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock),
           kWarpsPerBlock * kWarp, 0, cuda::stream()>>>(h, dev<T>(beta), rows, m);
  } else {
    relu_inplace<T><<<cuda::grid_for(rows * m), cuda::kBlock, 0, cuda::stream()>>>(h, rows * m);
  }
  BASIN_CUDA_CHECK_LAUNCH();
  gemm<T>(ordinal, false, false, rows, d, m, T(-1), h, m, dev<T>(xi), d, T(0), dev<T>(out), d);
}

/// The operands of the dense attention ops, contiguous: g, wq, wk, beta, then bq and bk when
/// `has_bias`, then the mask when `has_mask` (undefined tensors where absent).
struct DenseOperands {
  Tensor g, wq, wk, beta, bq, bk, mask;
};

DenseOperands dense_operands(const Tensors& in, bool has_bias, bool has_mask) {
  return {in[0].contiguous(),
          in[1].contiguous(),
          in[2].contiguous(),
          in[3].contiguous(),
          has_bias ? in[4].contiguous() : Tensor(),
          has_bias ? in[5].contiguous() : Tensor(),
          has_mask ? in[has_bias ? 6 : 4].contiguous() : Tensor()};
}

}  // namespace

void EnergyAttentionGrad::eval_cuda(const Tensors& in, Tensor& out) {
  if (in[1].shape(1) > kMaxLanes * kWarp || in[0].shape(1) > (int64_t{1} << 30)) {
    eval_fallback(in, out);  // heads wider than the kernels keep in registers
    return;
  }
  out.allocate();
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  const DenseOperands x = dense_operands(in, has_bias_, has_mask_);
  dispatch_float(x.g.dtype(), "EnergyAttentionGrad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (x.wq.shape(0) * x.wq.shape(1) == 0) {
      BASIN_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, out.nbytes(), cuda::stream()));
      return;
    }
    energy_attention_grad_cuda<T>(x.g, x.wq, x.wk, x.beta, x.bq, x.bk, x.mask, exclude_self_, out);
  });
}

void EnergyAttentionValue::eval_cuda(const Tensors& in, Tensor& out) {
  const int64_t tokens = in[0].shape(1), heads = in[1].shape(0), head_dim = in[1].shape(1);
  if (head_dim > kMaxLanes * kWarp || tokens > (int64_t{1} << 30) ||
      in[0].shape(0) * heads * tokens == 0) {
    eval_fallback(in, out);  // heads wider than the kernels keep in registers, or nothing to sum
    return;
  }
  out.allocate();
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  const DenseOperands x = dense_operands(in, has_bias_, has_mask_);
  dispatch_float(x.g.dtype(), "EnergyAttentionValue", [&](auto tag) {
    using T = typename decltype(tag)::type;
    energy_attention_value_cuda<T>(x.g, x.wq, x.wk, x.beta, x.bq, x.bk, x.mask, exclude_self_, out);
  });
}

void EnergyAttentionCoreVjp::eval_cuda(const Tensors& in, Tensor& out) {
  const Tensor qk = in[0].contiguous(), uv = in[1].contiguous();
  const int64_t batch = qk.shape(0), n = qk.shape(1), y = qk.shape(2) / 2 / heads_;
  bool fits = false;
  dispatch_float(qk.dtype(), "EnergyAttentionCoreVjp", [&](auto tag) {
    using T = typename decltype(tag)::type;
    static const size_t limit = opt_in_smem(attention_block_vjp<T>, out.device().index);
    fits = block_vjp_smem_bytes<T>(n, y) <= limit && n <= (int64_t{1} << 20);
  });
  if (!fits) {
    eval_fallback(in, out);  // too many tokens for one block: the ops
    return;
  }
  out.allocate();
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  const Tensor beta = in[2].contiguous();
  const Tensor mask = has_mask_ ? in[3].contiguous() : Tensor();
  const AttentionDims d{static_cast<int>(batch),
                        static_cast<int>(n),
                        static_cast<int>(heads_),
                        static_cast<int>(y),
                        mask.defined() ? dev<bool>(mask) : nullptr,
                        mask.defined() && mask.ndim() == 3 ? n * n : 0,
                        exclude_self_};
  dispatch_float(qk.dtype(), "EnergyAttentionCoreVjp", [&](auto tag) {
    using T = typename decltype(tag)::type;
    attention_block_vjp<T><<<static_cast<unsigned>(batch * heads_), kWarpsPerBlock * kWarp,
                             block_vjp_smem_bytes<T>(n, y), cuda::stream()>>>(
        dev<T>(qk), dev<T>(uv), dev<T>(beta), dev<T>(out), d);
    BASIN_CUDA_CHECK_LAUNCH();
  });
}

void HopfieldEnergyGrad::eval_cuda(const Tensors& in, Tensor& out) {
  out.allocate();
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  const Tensor g = in[0].contiguous(), xi = in[1].contiguous();
  const Tensor beta = log_sum_exp_ ? in[2].contiguous() : Tensor();
  dispatch_float(g.dtype(), "HopfieldEnergyGrad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (xi.shape(0) == 0) {
      BASIN_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, out.nbytes(), cuda::stream()));
      return;
    }
    hopfield_energy_grad_cuda<T>(g, xi, beta, out);
  });
}

}  // namespace basin::prims
