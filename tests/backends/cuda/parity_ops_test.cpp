// CUDA parity of the matmul, movement, indexing and segment ops (test-backend-ops style): every
// case of a table runs on the CPU and on the GPU, and the results, the first derivatives (vjp with
// a random cotangent) and the second derivatives (a vjp of that vjp) are compared by normalised
// error; a case that fails on the CPU must fail on the GPU with the same message. Skips without a
// GPU.
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "tests/backends/cuda/parity.h"
#include "tests/test_util.h"

namespace basin {
namespace {
using testing::make;
using namespace testing::parity;

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

// --- matmul --------------------------------------------------------------------------------------

/// A matmul case on operands of the given shapes; `fn` may lay them out before the product.
Case mm(const std::string& name, Shape sa, Shape sb,
        std::function<Tensor(const Tensor&, const Tensor&)> fn = {}) {
  if (!fn) fn = [](const Tensor& a, const Tensor& b) { return matmul(a, b); };
  return {name,
          [sa, sb](Dtype dt) {
            return Tensors{sample_data(sa, 1, dt), sample_data(sb, 2, dt)};
          },
          [fn](const Tensors& x) { return fn(x[0], x[1]); },
          kFloat,
          1e-4,
          {0, 1}};
}

std::vector<Case> matmul_cases() {
  using T = const Tensor&;
  return {
      mm("plain", {5, 7}, {7, 3}),
      mm("a_transposed", {7, 5}, {7, 3}, [](T a, T b) { return matmul(transpose(a), b); }),
      mm("b_transposed", {5, 7}, {3, 7}, [](T a, T b) { return matmul(a, transpose(b)); }),
      mm("both_transposed", {7, 5}, {3, 7},
         [](T a, T b) { return matmul(transpose(a), transpose(b)); }),
      mm("batched", {4, 5, 7}, {4, 7, 3}),
      mm("batched_permuted", {4, 7, 5}, {7, 4, 3},
         [](T a, T b) {
           return matmul(transpose(a, -2, -1), permute(b, {1, 0, 2}));
         }),
      mm("broadcast_batch", {2, 1, 5, 7}, {3, 7, 6}),
      // Batch offsets evenly spaced along each batch dimension but not overall: one strided call
      // per index of the shorter level.
      mm("broadcast_uneven", {1, 3, 5, 7}, {2, 1, 7, 4}),
      mm("batch_head_blocks", {2, 6, 3, 4}, {2, 6, 3, 4},
         [](T a, T b) {
           return matmul(permute(a, {0, 2, 1, 3}), transpose(permute(b, {0, 2, 1, 3}), -2, -1));
         }),
      // Too many uneven runs for that: the pointer-array call.
      mm("pointer_table", {2, 70, 2, 5, 7}, {7, 3},
         [](T a, T b) {
           return matmul(permute(a, {1, 0, 2, 3, 4}), b);
         }),
      // A non-contiguous left operand whose entries follow row by row: one tall product.
      mm("shared_rhs_fold", {3, 5, 9}, {7, 4},
         [](T a, T b) { return matmul(slice(a, 2, 0, 7), b); }),
      mm("shared_rhs_contiguous", {3, 5, 7}, {7, 4}),
      mm("vector_matrix", {7}, {7, 3}),
      mm("matrix_vector", {5, 7}, {7}),
      mm("dot", {7}, {7}),
      // Layouts BLAS cannot read in place: packed into a contiguous copy first.
      mm("strided_columns", {5, 14}, {7, 3},
         [](T a, T b) { return matmul(slice(a, 1, 0, 14, 2), b); }),
      mm("broadcast_rows", {1, 7}, {7, 3},
         [](T a, T b) {
           return matmul(broadcast_to(a, {5, 7}), b);
         }),
      mm("empty_rows", {0, 7}, {7, 3}),
      mm("empty_inner", {5, 0}, {0, 3}),
      mm("empty_batch", {0, 5, 7}, {0, 7, 3}),
      mm("large", {3, 64, 128}, {128, 96}, [](T a, T b) { return matmul(a, b) * 0.125; }),
      mm("large_broadcast_uneven", {1, 3, 64, 32}, {4, 1, 32, 48}),
      mm("large_batched_transposed", {2, 96, 64}, {2, 80, 96},
         [](T a, T b) { return matmul(transpose(a, -2, -1), transpose(b, -2, -1)); }),
  };
}

// --- movement ------------------------------------------------------------------------------------

std::vector<Case> movement_cases() {
  using X = const Tensors&;
  return {
      on("concat_axis0", {{2, 3}, {4, 3}},
         [](X x) {
           return concat({x[0], x[1]}, 0);
         },
         kAll, 1e-5, {0, 1}),
      on("concat_axis1_noncontiguous", {{3, 2}, {3, 4}, {3, 1}},
         [](X x) {
           return concat({transpose(x[0]), transpose(x[1]), transpose(x[2])}, 0);
         },
         kFloat, 1e-5, {0, 1, 2}),
      on("concat_middle_axis", {{2, 3, 4}, {2, 1, 4}, {2, 5, 4}},
         [](X x) {
           return concat({x[0], x[1], x[2]}, 1);
         },
         kAll, 1e-5, {0, 1, 2}),
      on("concat_with_empty", {{2, 3}, {0, 3}, {1, 3}},
         [](X x) {
           return concat({x[0], x[1], x[2]}, 0);
         },
         kAll, 1e-5, {0, 1, 2}),
      on("concat_all_empty", {{0, 3}, {0, 3}},
         [](X x) {
           return concat({x[0], x[1]}, 0);
         },
         kAll, 1e-5, {0, 1}),
      on("stack_axis1", {{3, 4}, {3, 4}},
         [](X x) {
           return stack({x[0], x[1]}, 1);
         },
         kAll, 1e-5, {0, 1}),
      on("pad_2d", {{3, 4}},
         [](X x) {
           return pad(x[0], {{1, 2}, {0, 3}}, 1.5);
         },
         kAll, 1e-5, {0}),
      on("pad_negative", {{4, 5}},
         [](X x) {
           return pad(x[0], {{-1, 1}, {2, -2}});
         },
         kAll, 1e-5, {0}),
      on("pad_noncontiguous_3d", {{2, 3, 4}},
         [](X x) {
           return pad(permute(x[0], {2, 0, 1}), {{1, 0}, {0, 2}, {3, 1}}, 3.0);
         },
         kAll, 1e-5, {0}),
      on("pad_empty_input", {{0, 3}},
         [](X x) {
           return pad(x[0], {{1, 1}, {0, 0}}, 7.0);
         },
         kAll, 1e-5, {0}),
      // The gradient of a strided slice is a Pad with interior padding.
      on("slice_step_gradient", {{4, 9}}, [](X x) { return slice(x[0], 1, 1, 9, 3) * 2.0; }, kFloat,
         1e-5, {0}),
      on("flip_axis0", {{4, 3}}, [](X x) { return flip(x[0], {0}); }, kAll, 1e-5, {0}),
      on("flip_all_noncontiguous", {{3, 4, 5}}, [](X x) { return flip(transpose(x[0], 0, 2)); },
         kAll, 1e-5, {0}),
      on("flip_empty", {{0, 4}}, [](X x) { return flip(x[0], {1}); }, kAll, 1e-5, {0}),
      on("tile", {{2, 3}},
         [](X x) {
           return tile(x[0], {2, 1, 2});
         },
         kAll, 1e-5, {0}),
  };
}

// --- indexing ------------------------------------------------------------------------------------

/// A case on data inputs of the given shapes followed by index inputs built by `index`.
Case with_index(const std::string& name, std::vector<Shape> shapes, std::function<Tensors()> index,
                std::function<Tensor(const Tensors&)> fn, std::vector<Dtype> dtypes,
                std::vector<int> argnums, double tol = 1e-5) {
  return {name,
          [shapes, index](Dtype dt) {
            Tensors ts;
            uint64_t seed = 1;
            for (const Shape& s : shapes) ts.push_back(sample_data(s, seed++, dt));
            for (const Tensor& t : index()) ts.push_back(t);
            return ts;
          },
          std::move(fn),
          std::move(dtypes),
          tol,
          std::move(argnums)};
}

std::vector<Case> index_cases() {
  using X = const Tensors&;
  auto idx = [](Shape s, int64_t hi, uint64_t seed, Dtype dt = Dtype::i64) {
    return [=] { return Tensors{indices(s, hi, seed, dt)}; };
  };
  // An index with one entry out of range, at a known place.
  auto bad = [](Shape s, int64_t hi, int64_t at, int64_t value, Dtype dt) {
    return [=] {
      std::vector<int64_t> v = indices(s, hi, 9).to_vector<int64_t>();
      v[static_cast<size_t>(at)] = value;
      return Tensors{from_vector(v, s).astype(dt)};
    };
  };
  return {
      with_index("gather_axis0_i64", {{5, 4}}, idx({3, 4}, 5, 11),
                 [](X x) { return gather(x[0], 0, x[1]); }, kAll, {0}),
      with_index("gather_axis1_i32_noncontiguous", {{6, 4}}, idx({4, 3}, 6, 12, Dtype::i32),
                 [](X x) { return gather(transpose(x[0]), 1, x[1]); }, kAll, {0}),
      with_index("gather_smaller_index", {{5, 6, 3}}, idx({2, 7, 2}, 6, 13),
                 [](X x) { return gather(x[0], 1, x[1]); }, kAll, {0}),
      with_index("gather_transposed_index", {{5, 4}}, idx({4, 3}, 5, 14),
                 [](X x) { return gather(x[0], 0, transpose(x[1])); }, kAll, {0}),
      with_index("gather_empty_index", {{5, 4}}, idx({0, 4}, 5, 15),
                 [](X x) { return gather(x[0], 0, x[1]); }, kAll, {0}),
      with_index("scatter_add_axis0_duplicates", {{5, 4}, {8, 4}}, idx({8, 4}, 5, 16),
                 [](X x) { return scatter_add(x[0], 0, x[2], x[1]); }, kNumeric, {0, 1}),
      with_index("scatter_add_axis1_broadcast_src", {{4, 6}, {1, 5}},
                 idx({3, 5}, 6, 17, Dtype::i32),
                 [](X x) { return scatter_add(x[0], 1, x[2], x[1]); }, kNumeric, {0, 1}),
      with_index("scatter_add_noncontiguous_base", {{6, 4}, {4, 9}}, idx({4, 9}, 6, 18),
                 [](X x) { return scatter_add(transpose(x[0]), 1, x[2], x[1]); }, kNumeric, {0, 1}),
      with_index("scatter_add_empty_index", {{5, 4}, {0, 4}}, idx({0, 4}, 5, 19),
                 [](X x) { return scatter_add(x[0], 0, x[2], x[1]); }, kNumeric, {0, 1}),
      with_index("index_select_axis0", {{6, 5}}, idx({9}, 6, 20),
                 [](X x) { return index_select(x[0], 0, x[1]); }, kAll, {0}),
      with_index("index_select_axis1_i32", {{4, 7, 3}}, idx({10}, 7, 21, Dtype::i32),
                 [](X x) { return index_select(x[0], 1, x[1]); }, kAll, {0}),
      with_index("embedding", {{10, 4}}, idx({3, 50}, 10, 22, Dtype::i32),
                 [](X x) { return embedding(x[0], x[1]); }, kAll, {0}),
      with_index("embedding_noncontiguous_weight", {{4, 10}}, idx({7}, 10, 23),
                 [](X x) { return embedding(transpose(x[0]), x[1]); }, kFloat, {0}),
      // Many blocks, many duplicates: the grouped and the column scatter-add at scale.
      with_index("embedding_large", {{100, 64}}, idx({40, 50}, 100, 27),
                 [](X x) { return embedding(x[0], x[1]); }, kFloat, {0}),
      with_index("gather_large", {{300, 257}}, idx({500, 257}, 300, 28),
                 [](X x) { return gather(x[0], 0, x[1]); }, kFloat, {0}),
      with_index("scatter_add_large", {{50, 33}, {2000, 33}}, idx({2000, 33}, 50, 29),
                 [](X x) { return scatter_add(x[0], 0, x[2], x[1]); }, kFloat, {0, 1}),
      with_index("index_put_accumulate", {{6, 3}, {5, 3}}, idx({5}, 6, 24),
                 [](X x) { return index_put(x[0], 0, x[2], x[1], true); }, kNumeric, {0, 1}),
      with_index(
          "index_put", {{6, 3}, {3, 3}},
          [] {
            return Tensors{tensor<int64_t>({4, 0, 2})};
          },
          [](X x) { return index_put(x[0], 0, x[2], x[1]); }, kNumeric, {0, 1}),
      with_index("one_hot", {}, idx({4, 3}, 5, 25),
                 [](X x) { return one_hot(x[0], 5, Dtype::f32); }, {Dtype::f32}, {}),
      // Out-of-range indices: the GPU raises the CPU's error, naming the first bad entry.
      failing(with_index("gather_out_of_range", {{5, 4}}, bad({3, 4}, 5, 6, 5, Dtype::i64),
                         [](X x) { return gather(x[0], 0, x[1]); }, kFloat, {})),
      failing(with_index("gather_negative_index", {{5, 4}}, bad({3, 4}, 5, 2, -1, Dtype::i32),
                         [](X x) { return gather(x[0], 0, x[1]); }, kFloat, {})),
      failing(with_index("scatter_add_out_of_range", {{5, 4}, {8, 4}},
                         bad({8, 4}, 5, 13, 9, Dtype::i64),
                         [](X x) { return scatter_add(x[0], 0, x[2], x[1]); }, kFloat, {})),
      failing(with_index("index_select_out_of_range", {{6, 5}}, bad({9}, 6, 4, 6, Dtype::i32),
                         [](X x) { return index_select(x[0], 0, x[1]); }, kFloat, {})),
      failing(with_index("embedding_backward_out_of_range", {{4, 5}, {1, 5}},
                         bad({1}, 4, 0, 7, Dtype::i64),
                         [](X x) { return index_put(x[0], 0, x[2], x[1], true); }, kFloat, {})),
      failing(with_index("scatter_into_empty_axis", {{0, 3}, {2, 3}}, idx({2, 3}, 1, 26),
                         [](X x) { return scatter_add(x[0], 0, x[2], x[1]); }, kFloat, {})),
  };
}

// --- segments ------------------------------------------------------------------------------------

/// Segment sizes shared by the cases: empty segments at the start, middle and end.
const std::vector<int64_t> kSizes = {0, 2, 3, 0, 1, 4, 0};

Tensor offsets_of(const std::vector<int64_t>& sizes, Dtype dt) {
  std::vector<int64_t> off{0};
  for (int64_t s : sizes) off.push_back(off.back() + s);
  return from_vector(off, {static_cast<int64_t>(off.size())}).astype(dt);
}

/// Segment ids of the rows, sorted or in a fixed shuffled order.
Tensor ids_of(const std::vector<int64_t>& sizes, bool shuffled, Dtype dt) {
  std::vector<int64_t> ids;
  for (size_t s = 0; s < sizes.size(); ++s) ids.insert(ids.end(), sizes[s], int64_t(s));
  if (shuffled) {
    // A fixed permutation (a stride coprime to the length) keeps the test deterministic.
    std::vector<int64_t> out(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) out[i] = ids[(i * 7) % ids.size()];
    ids = out;
  }
  return from_vector(ids, {static_cast<int64_t>(ids.size())}).astype(dt);
}

/// x (N, ...) with one NaN and one repeated maximum, for segment_max.
Tensor with_nan_and_ties(const Tensor& x) {
  std::vector<double> v = x.to_vector<double>();
  v[1] = kNan;  // row 0 (segment 1)
  v[v.size() - 1] = v[v.size() - 1 - static_cast<size_t>(x.numel() / x.shape(0))];
  return from_vector(v, x.shape(), x.device()).astype(x.dtype());
}

std::vector<Case> segment_cases() {
  using X = const Tensors&;
  const int64_t n = 10, count = static_cast<int64_t>(kSizes.size());
  std::vector<Case> cases;
  // Every reduction with each way of giving the segments.
  struct Layout {
    const char* name;
    std::function<Tensor()> seg;
    bool csr;
  };
  const std::vector<Layout> layouts = {
      {"offsets_i64", [] { return offsets_of(kSizes, Dtype::i64); }, true},
      {"offsets_i32", [] { return offsets_of(kSizes, Dtype::i32); }, true},
      {"ids_sorted_i64", [] { return ids_of(kSizes, false, Dtype::i64); }, false},
      {"ids_shuffled_i32", [] { return ids_of(kSizes, true, Dtype::i32); }, false},
  };
  for (const Layout& l : layouts) {
    const bool csr = l.csr;
    auto reduce = [csr, count](auto op) {
      return [csr, count, op](X x) { return csr ? op(x[0], x[1]) : op(x[0], x[1], count); };
    };
    const auto seg = l.seg;
    auto make_case = [&](const std::string& what, Shape shape,
                         std::function<Tensor(const Tensors&)> fn, std::vector<Dtype> dtypes,
                         std::vector<int> argnums, double tol = 1e-5) {
      cases.push_back(with_index(
          what + "_" + l.name, {std::move(shape)}, [seg] { return Tensors{seg()}; }, std::move(fn),
          std::move(dtypes), std::move(argnums), tol));
    };
    make_case("sum", {n, 3}, reduce([](auto&&... a) { return segment_sum(a...); }), kNumeric, {0});
    make_case("sum_1d", {n}, reduce([](auto&&... a) { return segment_sum(a...); }), kFloat, {0});
    make_case("sum_noncontiguous_3d", {3, n, 2}, reduce([](const Tensor& x, auto&&... a) {
                return segment_sum(permute(x, {1, 0, 2}), a...);
              }),
              kNumeric, {0});
    make_case("sum_no_features", {n, 0}, reduce([](auto&&... a) { return segment_sum(a...); }),
              kFloat, {0});
    make_case("max", {n, 4}, reduce([](auto&&... a) { return segment_max(a...); }), kNumeric, {0});
    make_case("max_nan_and_ties", {n, 4}, reduce([](const Tensor& x, auto&&... a) {
                return segment_max(with_nan_and_ties(x), a...);
              }),
              kFloat, {});
    make_case("mean", {n, 3}, reduce([](auto&&... a) { return segment_mean(a...); }), kFloat, {0});
    make_case("logsumexp", {n, 2}, reduce([](auto&&... a) { return segment_logsumexp(a...); }),
              kFloat, {0}, 1e-4);
    make_case("softmax", {n, 2}, reduce([](auto&&... a) { return segment_softmax(a...); }), kFloat,
              {0}, 1e-4);
  }
  // Many rows in random order over many segments, some empty.
  cases.push_back(with_index(
      "sum_large_random_ids", {{5000, 17}}, [] { return Tensors{indices({5000}, 300, 30)}; },
      [](X x) { return segment_sum(x[0], x[1], 310); }, kNumeric, {0}));
  cases.push_back(with_index(
      "max_large_random_ids", {{5000, 17}},
      [] { return Tensors{indices({5000}, 300, 31, Dtype::i32)}; },
      [](X x) { return segment_max(x[0], x[1], 310); }, kNumeric, {0}));
  // Segments of no rows at all, and zero segments.
  cases.push_back(with_index(
      "sum_no_rows", {{0, 3}},
      [] {
        return Tensors{ids_of({0, 0}, false, Dtype::i64)};
      },
      [](X x) { return segment_sum(x[0], x[1], 2); }, kFloat, {0}));
  cases.push_back(with_index(
      "max_no_segments", {{0, 3}}, [] { return Tensors{offsets_of({}, Dtype::i64)}; },
      [](X x) { return segment_max(x[0], x[1]); }, kNumeric, {0}));
  // Conversions between the layouts.
  for (Dtype dt : {Dtype::i32, Dtype::i64}) {
    const std::string suffix = dt == Dtype::i32 ? "_i32" : "_i64";
    cases.push_back(with_index(
        "ids_from_offsets" + suffix, {}, [dt] { return Tensors{offsets_of(kSizes, dt)}; },
        [](X x) { return segment_ids_from_offsets(x[0]); }, {Dtype::f32}, {}));
    cases.push_back(with_index(
        "offsets_from_ids" + suffix, {}, [dt] { return Tensors{ids_of(kSizes, false, dt)}; },
        [count](X x) { return offsets_from_ids(x[0], count); }, {Dtype::f32}, {}));
  }
  cases.push_back(with_index(
      "offsets_from_no_ids", {}, [] { return Tensors{zeros({0}, Dtype::i64)}; },
      [](X x) { return offsets_from_ids(x[0], 3); }, {Dtype::f32}, {}));
  // Invalid segments: the same errors as on the CPU.
  auto offsets = [](std::vector<int64_t> v) {
    return [v] { return Tensors{from_vector(v, {static_cast<int64_t>(v.size())})}; };
  };
  cases.push_back(failing(with_index("offsets_not_from_zero", {{4, 2}}, offsets({1, 2, 4}),
                                     [](X x) { return segment_sum(x[0], x[1]); }, kFloat, {})));
  cases.push_back(failing(with_index("offsets_decreasing", {{4, 2}}, offsets({0, 3, 2, 4}),
                                     [](X x) { return segment_max(x[0], x[1]); }, kFloat, {})));
  cases.push_back(failing(with_index("offsets_short", {{4, 2}}, offsets({0, 1, 3}),
                                     [](X x) { return segment_sum(x[0], x[1]); }, kFloat, {})));
  cases.push_back(failing(with_index("ids_out_of_range", {{4, 2}}, offsets({0, 2, 5, 1}),
                                     [](X x) { return segment_sum(x[0], x[1], 3); }, kFloat, {})));
  cases.push_back(failing(with_index("ids_negative", {{4, 2}}, offsets({0, -1, 1, 1}),
                                     [](X x) { return segment_max(x[0], x[1], 3); }, kFloat, {})));
  cases.push_back(
      failing(with_index("ids_from_bad_offsets", {}, offsets({0, 3, 2}),
                         [](X x) { return segment_ids_from_offsets(x[0], 2); }, {Dtype::f32}, {})));
  cases.push_back(
      failing(with_index("offsets_from_unsorted_ids", {}, offsets({0, 2, 1}),
                         [](X x) { return offsets_from_ids(x[0], 3); }, {Dtype::f32}, {})));
  return cases;
}

// --- the parity tables ---------------------------------------------------------------------------

class ParityOps : public ::testing::TestWithParam<Case> {};

TEST_P(ParityOps, MatchesTheCpu) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  run_case(GetParam());
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(CudaParityOpsMatmul, ParityOps, ::testing::ValuesIn(matmul_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(CudaParityOpsMovement, ParityOps, ::testing::ValuesIn(movement_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(CudaParityOpsIndex, ParityOps, ::testing::ValuesIn(index_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(CudaParityOpsSegment, ParityOps, ::testing::ValuesIn(segment_cases()),
                         case_name);

// --- beyond the tables ---------------------------------------------------------------------------

TEST(CudaParityOpsCoverage, NoHostFallback) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  // An op without a kernel warns once on its first host run; none of these may.
  const Device gpu = Device::cuda(0);
  ::testing::internal::CaptureStderr();
  const Tensor x = make({6, 4}, 1).to(gpu);
  const Tensor ids = tensor<int64_t>({0, 2, 2, 1, 0, 3}).to(gpu);
  const Tensor offsets = tensor<int64_t>({0, 2, 2, 6}).to(gpu);
  (void)matmul(x, transpose(x));
  (void)concat({x, x}, 1);
  (void)pad(x, {{1, 0}, {0, 1}});
  (void)flip(x, {0});
  (void)gather(x, 0, broadcast_to(unsqueeze(ids, 1), {6, 4}));
  (void)scatter_add(x, 0, broadcast_to(unsqueeze(ids, 1), {6, 4}), x);
  (void)segment_sum(x, offsets);
  (void)segment_max(x, ids, 4);
  (void)segment_ids_from_offsets(offsets, 6);
  (void)offsets_from_ids(tensor<int64_t>({0, 0, 1}).to(gpu), 2);
  const std::string log = ::testing::internal::GetCapturedStderr();
  for (const char* op : {"Matmul", "Concat", "Pad", "Flip", "Gather", "ScatterAdd", "SegmentSum",
                         "SegmentMax", "OffsetsToIds", "IdsToOffsets"}) {
    EXPECT_EQ(log.find(std::string("[") + op + "] has no CUDA kernel"), std::string::npos) << op;
  }
}

TEST(CudaParityOpsMatmul, Tf32IsOptIn) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  EXPECT_FALSE(cuda_allow_tf32());
  const Tensor a = make({256, 512}, 1, -1, 1, Dtype::f32),
               b = make({512, 192}, 2, -1, 1, Dtype::f32);
  const Tensor want = matmul(a.astype(Dtype::f64), b.astype(Dtype::f64));
  const Tensor gpu_a = a.to(Device::cuda(0)), gpu_b = b.to(Device::cuda(0));
  const double exact = normalised_error(matmul(gpu_a, gpu_b).astype(Dtype::f64), want);
  set_cuda_allow_tf32(true);
  const double tf32 = normalised_error(matmul(gpu_a, gpu_b).astype(Dtype::f64), want);
  set_cuda_allow_tf32(false);
  // float32 products stay at float32 precision; TF32 (10-bit mantissa) is coarser but close.
  EXPECT_LE(exact, 1e-6);
  EXPECT_LE(tf32, 1e-2);
  std::printf("matmul 256x512x192 vs float64: float32 %.2e, tf32 %.2e\n", exact, tf32);
}

TEST(CudaParityOpsMatmul, RunsFromManyThreads) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  // The cuBLAS handle is created lazily and shared: concurrent first uses must be safe.
  const Tensor a = make({32, 48}, 1).to(Device::cuda(0)), b = make({48, 16}, 2).to(Device::cuda(0));
  const Tensor want = matmul(a.to(Device::cpu()), b.to(Device::cpu()));
  std::vector<Tensor> results(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i)
    threads.emplace_back([&, i] { results[i] = matmul(a, b); });
  for (std::thread& t : threads) t.join();
  for (const Tensor& r : results) EXPECT_LE(normalised_error(r, want), 1e-12);
}

}  // namespace
}  // namespace basin
