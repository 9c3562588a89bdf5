// CPU matmul: batched GEMM on strided operands, BLAS reading them in place; library picked by size.
#include <cblas.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <string>

#include "backends/cpu/parallel.h"
#include "backends/gemm_layout.h"
#include "core/counters.h"
#include "core/prims/matmul.h"

namespace basin::prims {
namespace {

using gemm_layout::batch_offsets;
using gemm_layout::Operand;
using gemm_layout::prepare;

// --- strategy ------------------------------------------------------------------------------------
// Chosen by measuring dnnl_sgemm, OpenBLAS 0.3.21 (OpenMP build, running its Haswell kernels on
// these AVX-512 CPUs) and oneDNN's matmul primitive on the 2-core AMD EPYC development host, and
// cross-checked on a 16-core Intel Xeon (where oneDNN's sgemm led OpenBLAS by about 2x
// throughout), since other jobs often kept the host's two cores busy.

/// Whether one float32 product goes to OpenBLAS rather than oneDNN's sgemm. On the host oneDNN
/// was ahead from 64^3 up (512^3: 114 vs 112 GFLOP/s on one thread, 226 vs 219 on two; 128^3 on
/// two: 214 vs 151) except single-threaded with only B transposed below 128^3 (64^3: 77 vs 91
/// GFLOP/s; on two threads oneDNN led again, 119 vs 91). OpenBLAS's smaller call overhead wins
/// below ~16k multiply-adds (16^3: 176 vs 340 ns), but it is slow on a single row (1x256x256:
/// 13.9 vs 3.1 us).
bool prefer_openblas_sgemm(int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
  if (m == 1) return false;
  const int64_t mnk = m * n * k;
  if (mnk < 16384) return true;
  const bool one_thread = omp_in_parallel() || omp_get_max_threads() == 1;
  return one_thread && tb && !ta && mnk < 128 * 128 * 128;
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float* c, int64_t ldc) {
  if (!prefer_openblas_sgemm(m, n, k, ta, tb)) {
    const dnnl_status_t status =
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.f, a, lda, b, ldb, 0.f, c, ldc);
    if (status != dnnl_success) {
      fail("[matmul] oneDNN sgemm failed with status {}", static_cast<int>(status));
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.f, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), 0.f, c, static_cast<int>(ldc));
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda,
          const double* b, int64_t ldb, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), 0.0, c, static_cast<int>(ldc));
}

/// Whether a batch of `count` (m, k) @ (k, n) products runs one single-threaded product per
/// thread (else one multi-threaded product after another). Inside the parallel region oneDNN and
/// the OpenMP OpenBLAS see omp_in_parallel() and stay on their thread. For float64 on the Xeon,
/// splitting won whenever every thread got an entry (2 threads, 128 x 65x32x65: 0.68 vs 1.35 ms)
/// and for mid-sized products even with idle threads (16 threads, 8 x 256^3: 0.96 vs 1.16 ms),
/// but lost for a few large ones (16 threads, 4 x 512^3: 6.9 vs 4.0 ms).
bool split_batch(int64_t count, int64_t m, int64_t n, int64_t k) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads <= 1) return false;
  return count >= threads || m * n * k <= int64_t{256} * 256 * 256;
}

dnnl::engine& onednn_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

/// oneDNN's batched matmul primitive. Broadcast batch dimensions are described as size 1 (with
/// zero strides it picks its reference kernel). Primitives come from oneDNN's own primitive cache
/// (a thread-safe LRU keyed by the descriptors), so building the descriptor and fetching the
/// primitive per call costs about 2 us, which is why basin keeps no cache of its own; the user
/// scratchpad makes a cached primitive safe to run from several threads at once. Returns false
/// when oneDNN has no fast kernel for the layout.
bool onednn_matmul(const Operand& a, const Operand& b, float* c, const Shape& batch, int64_t m,
                   int64_t n, int64_t k) {
  using dnnl::memory;
  const int nb = static_cast<int>(batch.size());
  if (nb + 2 > DNNL_MAX_NDIMS) return false;
  auto describe = [&](const Operand* op, int64_t rows, int64_t cols) {
    memory::dims dims, strides;
    for (int d = 0; d < nb; ++d) {
      const bool broadcast = op && op->batch_strides[d] == 0;
      dims.push_back(broadcast ? 1 : batch[d]);
      strides.push_back(op ? op->batch_strides[d] : 0);
    }
    dims.push_back(rows);
    dims.push_back(cols);
    if (!op) {
      strides.push_back(cols);
      strides.push_back(1);
    } else if (op->trans) {
      strides.push_back(1);
      strides.push_back(op->ld);
    } else {
      strides.push_back(op->ld);
      strides.push_back(1);
    }
    // Size-1 and output dimensions get dense strides: oneDNN falls back to slow kernels on
    // arbitrary strides of size-1 dimensions.
    int64_t extent = std::max(rows * strides[nb], cols * strides[nb + 1]);
    for (int d = nb - 1; d >= 0; --d) {
      if (dims[d] == 1 || !op) strides[d] = extent;
      extent = std::max(extent, dims[d] * strides[d]);
    }
    return memory::desc(dims, memory::data_type::f32, strides);
  };
  try {
    const memory::desc ad = describe(&a, m, k), bd = describe(&b, k, n),
                       cd = describe(nullptr, m, n);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, cd), attr, onednn_engine());
    // The reference implementation (picked for layouts the fast kernels decline) is far slower
    // than a loop of sgemm calls.
    if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) return false;
    const dnnl::matmul prim(pd);
    dnnl::engine& engine = onednn_engine();
    const memory am(ad, engine, const_cast<void*>(a.data.raw_data()));
    const memory bm(bd, engine, const_cast<void*>(b.data.raw_data()));
    const memory cm(cd, engine, c);
    const memory::desc sd = pd.scratchpad_desc();
    std::unique_ptr<char[]> scratch(new char[std::max<size_t>(sd.get_size(), 1)]);
    const memory sm(sd, engine, scratch.get());
    thread_local dnnl::stream stream(engine);
    prim.execute(stream, {{DNNL_ARG_SRC, am},
                          {DNNL_ARG_WEIGHTS, bm},
                          {DNNL_ARG_DST, cm},
                          {DNNL_ARG_SCRATCHPAD, sm}});
    stream.wait();
  } catch (const dnnl::error&) {
    return false;
  }
  return true;
}

template <class T>
void matmul_kernel(const Tensor& x, const Tensor& y, Tensor& out) {
  out.allocate();
  const int nb = out.ndim() - 2;
  const Shape batch(out.shape().begin(), out.shape().begin() + nb);
  const int64_t m = out.shape()[nb], n = out.shape()[nb + 1], k = x.shape()[nb + 1];
  T* c = out.data<T>();
  if (out.numel() == 0) return;
  if (k == 0) {
    std::memset(static_cast<void*>(c), 0, out.nbytes());
    return;
  }
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX) {
    fail("[matmul] matrix dimensions above 2^31 - 1 are not supported: ({}, {}) @ ({}, {})", m, k,
         k, n);
  }
  const Operand a = prepare(x, nb), b = prepare(y, nb);
  const T* pa = a.data.template data<T>();
  const T* pb = b.data.template data<T>();
  const std::vector<int64_t> oa = batch_offsets(batch, a.batch_strides);
  const std::vector<int64_t> ob = batch_offsets(batch, b.batch_strides);
  const int64_t count = static_cast<int64_t>(oa.size());
  count_matmul_flops(2 * m * n * k * count);

  // A right operand shared by every batch entry and a left operand whose entries follow each
  // other row by row form one tall product.
  if (count == 1 || gemm_layout::folds_into_one(a, oa, ob, m)) {
    gemm(a.trans, b.trans, m * count, n, k, pa + oa[0], a.ld, pb + ob[0], b.ld, c, n);
    return;
  }
  auto run = [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      gemm(a.trans, b.trans, m, n, k, pa + oa[i], a.ld, pb + ob[i], b.ld, c + i * m * n, n);
    }
  };
  // float32 batches go to oneDNN's batched matmul: on the Xeon the best or within 10% of the
  // best strategy in every case measured, with 2 and 16 threads (2 threads, 128 x 65x32x65 with
  // B transposed: 0.21 ms against 0.41 ms for a loop of sgemm calls and 0.20 ms for threads
  // over the batch; 1024 x 16^3: 56 us against 240 us and 188 us).
  if constexpr (std::is_same_v<T, float>) {
    if (onednn_matmul(a, b, c, batch, m, n, k)) return;
  }
  if (split_batch(count, m, n, k)) {
    cpu::parallel_for(count, m * n * k, run);
  } else {
    run(0, count);
  }
}

}  // namespace

void Matmul::eval_cpu(const Tensors& in, Tensor& out) {
  dispatch_float(out.dtype(), "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    matmul_kernel<T>(in[0], in[1], out);
  });
}

}  // namespace basin::prims
