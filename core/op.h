// Op: one class per primitive. Its forward is defined once per backend (eval_cpu in backends/cpu,
// eval_cuda in backends/cuda) and its vector-Jacobian product once, with public ops only, so the
// backward pass is itself a differentiable graph.
#pragma once

#include <memory>
#include <vector>

#include "core/tensor.h"

// Declares an op's CUDA forward (defined in backends/cuda) in a build with CUDA. An op without it
// runs Op::eval_cuda: on the host, with a one-time warning, in a CUDA build; a clear error
// naming the op in a build without CUDA.
#ifdef BASIN_HAS_CUDA
#define BASIN_EVAL_CUDA void eval_cuda(const Tensors& inputs, Tensor& out) override;
#else
#define BASIN_EVAL_CUDA
#endif

namespace basin {

class Op {
 public:
  virtual ~Op() = default;
  /// The op's name as it appears in error messages.
  virtual const char* name() const = 0;

  /// Writes the result into `out`, whose shape, dtype and device are set: either allocate() it
  /// or make it a view with share_storage().
  virtual void eval_cpu(const Tensors& inputs, Tensor& out) = 0;
  /// CUDA forward. The default copies the inputs to the host, runs eval_cpu and copies the result
  /// back (warning once per op), so every op works on a GPU before it has a kernel.
  virtual void eval_cuda(const Tensors& inputs, Tensor& out);

  /// Cotangents of inputs[argnums[k]] given the cotangent of the output. Written with public ops
  /// only. A result may keep the output's broadcast shape: the caller sums it down.
  virtual Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
                      const std::vector<int>& argnums) = 0;
};

/// Builds the output of `op` on `inputs` with the given shape and dtype, evaluates it now on the
/// inputs' device (or `device` when there are none), and records the op when grad mode is on, an
/// input requires a gradient and the output is floating.
Tensor apply(std::shared_ptr<Op> op, const Tensors& inputs, const Shape& shape, Dtype dtype);
Tensor apply(std::shared_ptr<Op> op, const Tensors& inputs, const Shape& shape, Dtype dtype,
             Device device);

}  // namespace basin
