// Op classes of the segment family: reductions over groups of rows, offsets/ids conversions.
#pragma once

#include <cstdint>

#include "core/op.h"

namespace basin::prims {

/// How the second input of a segment op describes the segments: CSR offsets (length S + 1,
/// nondecreasing, from 0 to N) or one segment id in [0, S) per row (any order).
enum class SegmentLayout { offsets, ids };

/// Base of the segment reductions: inputs {x, segments}, x of shape (N, ...), output (S, ...).
/// `api` names the public function in errors about the segments.
class SegmentReduce : public Op {
 public:
  SegmentReduce(SegmentLayout layout, int64_t num_segments, const char* api)
      : layout_(layout), num_segments_(num_segments), api_(api) {}
  SegmentLayout layout() const { return layout_; }
  int64_t num_segments() const { return num_segments_; }

 protected:
  SegmentLayout layout_;
  int64_t num_segments_;
  const char* api_;
};

/// Sum of each segment's rows; an empty segment gives 0.
class SegmentSum final : public SegmentReduce {
 public:
  using SegmentReduce::SegmentReduce;
  const char* name() const override { return "SegmentSum"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
};

/// Elementwise maximum of each segment's rows (NaN propagates); an empty segment gives -inf
/// (the lowest value for integers).
class SegmentMax final : public SegmentReduce {
 public:
  using SegmentReduce::SegmentReduce;
  const char* name() const override { return "SegmentMax"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
};

/// CSR offsets (S + 1) -> the segment id of each of the N rows; validates the offsets.
class OffsetsToIds final : public Op {
 public:
  explicit OffsetsToIds(const char* api) : api_(api) {}
  const char* name() const override { return "OffsetsToIds"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;

 private:
  const char* api_;
};

/// Sorted segment ids (N) -> CSR offsets (S + 1); validates that the ids are sorted and in range.
class IdsToOffsets final : public Op {
 public:
  explicit IdsToOffsets(const char* api) : api_(api) {}
  const char* name() const override { return "IdsToOffsets"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;

 private:
  const char* api_;
};

}  // namespace basin::prims
