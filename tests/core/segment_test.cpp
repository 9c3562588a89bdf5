// Segment ops: forward vs naive references for every segment layout, derivatives, errors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "tests/test_util.h"

namespace basin {
namespace {
using testing::all_close;
using testing::make;
constexpr double kInf = std::numeric_limits<double>::infinity();

enum class Layout { offsets32, offsets64, sorted_ids64, shuffled_ids32 };
const Layout kLayouts[] = {Layout::offsets32, Layout::offsets64, Layout::sorted_ids64,
                           Layout::shuffled_ids32};

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::offsets32:
      return "offsets32";
    case Layout::offsets64:
      return "offsets64";
    case Layout::sorted_ids64:
      return "sorted_ids64";
    case Layout::shuffled_ids32:
      return "shuffled_ids32";
  }
  return "?";
}

/// Segments as passed to the ops, with the segment id of each row on the host for references.
struct Segs {
  bool csr;
  Tensor seg;
  int64_t count;
  std::vector<int64_t> ids;
};

Segs make_segs(const std::vector<int64_t>& sizes, Layout layout, uint64_t seed = 1) {
  std::vector<int64_t> offsets{0}, ids;
  for (size_t s = 0; s < sizes.size(); ++s) {
    offsets.push_back(offsets.back() + sizes[s]);
    ids.insert(ids.end(), static_cast<size_t>(sizes[s]), static_cast<int64_t>(s));
  }
  const int64_t count = static_cast<int64_t>(sizes.size());
  const int64_t n = static_cast<int64_t>(ids.size());
  switch (layout) {
    case Layout::offsets32:
      return {true, from_vector(offsets, {count + 1}).astype(Dtype::i32), count, ids};
    case Layout::offsets64:
      return {true, from_vector(offsets, {count + 1}), count, ids};
    case Layout::sorted_ids64:
      return {false, from_vector(ids, {n}), count, ids};
    case Layout::shuffled_ids32:
      std::shuffle(ids.begin(), ids.end(), std::mt19937_64(seed));
      return {false, from_vector(ids, {n}).astype(Dtype::i32), count, ids};
  }
  return {};
}

using CsrFn = std::function<Tensor(const Tensor&, const Tensor&)>;
using IdsFn = std::function<Tensor(const Tensor&, const Tensor&, int64_t)>;
/// Reference over host values: x (N, F) row-major, ids (N), S segments.
using RefFn = std::function<std::vector<double>(const std::vector<double>&,
                                                const std::vector<int64_t>&, int64_t, int64_t)>;

std::vector<double> ref_sum(const std::vector<double>& x, const std::vector<int64_t>& ids,
                            int64_t count, int64_t f) {
  std::vector<double> out(static_cast<size_t>(count * f), 0.0);
  for (size_t r = 0; r < ids.size(); ++r) {
    for (int64_t j = 0; j < f; ++j) out[ids[r] * f + j] += x[r * f + j];
  }
  return out;
}

std::vector<double> ref_mean(const std::vector<double>& x, const std::vector<int64_t>& ids,
                             int64_t count, int64_t f) {
  std::vector<double> out = ref_sum(x, ids, count, f);
  std::vector<int64_t> n(static_cast<size_t>(count), 0);
  for (int64_t id : ids) ++n[id];
  for (int64_t s = 0; s < count; ++s) {
    for (int64_t j = 0; j < f; ++j) out[s * f + j] /= std::max<int64_t>(n[s], 1);
  }
  return out;
}

std::vector<double> ref_max(const std::vector<double>& x, const std::vector<int64_t>& ids,
                            int64_t count, int64_t f) {
  std::vector<double> out(static_cast<size_t>(count * f), -kInf);
  for (size_t r = 0; r < ids.size(); ++r) {
    for (int64_t j = 0; j < f; ++j)
      out[ids[r] * f + j] = std::max(out[ids[r] * f + j], x[r * f + j]);
  }
  return out;
}

std::vector<double> ref_lse(const std::vector<double>& x, const std::vector<int64_t>& ids,
                            int64_t count, int64_t f) {
  const std::vector<double> m = ref_max(x, ids, count, f);
  std::vector<double> total(m.size(), 0.0);
  for (size_t r = 0; r < ids.size(); ++r) {
    for (int64_t j = 0; j < f; ++j)
      total[ids[r] * f + j] += std::exp(x[r * f + j] - m[ids[r] * f + j]);
  }
  std::vector<double> out(m.size());
  for (size_t i = 0; i < m.size(); ++i) out[i] = m[i] == -kInf ? -kInf : std::log(total[i]) + m[i];
  return out;
}

std::vector<double> ref_softmax(const std::vector<double>& x, const std::vector<int64_t>& ids,
                                int64_t count, int64_t f) {
  const std::vector<double> lse = ref_lse(x, ids, count, f);
  std::vector<double> out(x.size());
  for (size_t r = 0; r < ids.size(); ++r) {
    for (int64_t j = 0; j < f; ++j) out[r * f + j] = std::exp(x[r * f + j] - lse[ids[r] * f + j]);
  }
  return out;
}

struct SegOp {
  const char* name;
  CsrFn csr;
  IdsFn by_ids;
  RefFn ref;
  bool per_row;  // the result has x's shape (softmax) rather than (S, ...)
};

std::vector<SegOp> seg_ops() {
  return {
      {"sum", [](const Tensor& x, const Tensor& o) { return segment_sum(x, o); },
       [](const Tensor& x, const Tensor& i, int64_t s) { return segment_sum(x, i, s); }, ref_sum,
       false},
      {"mean", [](const Tensor& x, const Tensor& o) { return segment_mean(x, o); },
       [](const Tensor& x, const Tensor& i, int64_t s) { return segment_mean(x, i, s); }, ref_mean,
       false},
      {"max", [](const Tensor& x, const Tensor& o) { return segment_max(x, o); },
       [](const Tensor& x, const Tensor& i, int64_t s) { return segment_max(x, i, s); }, ref_max,
       false},
      {"logsumexp", [](const Tensor& x, const Tensor& o) { return segment_logsumexp(x, o); },
       [](const Tensor& x, const Tensor& i, int64_t s) { return segment_logsumexp(x, i, s); },
       ref_lse, false},
      {"softmax", [](const Tensor& x, const Tensor& o) { return segment_softmax(x, o); },
       [](const Tensor& x, const Tensor& i, int64_t s) { return segment_softmax(x, i, s); },
       ref_softmax, true},
  };
}

Tensor run(const SegOp& op, const Tensor& x, const Segs& s, const Tensor& seg) {
  return s.csr ? op.csr(x, seg) : op.by_ids(x, seg, s.count);
}

struct SegCase {
  const char* name;
  std::vector<int64_t> sizes;
  Shape features;
};

const std::vector<SegCase> kCases = {
    {"vector", {2, 3, 1}, {}},
    {"features", {2, 3, 1}, {4}},
    {"trailing_dims", {1, 4, 2}, {2, 3}},
    {"empty_segments", {0, 3, 0, 2, 0}, {3}},
    {"one_segment", {5}, {}},
    {"singletons", {1, 1, 1, 1}, {2}},
    {"empty_x", {0, 0}, {2}},
    {"no_segments", {}, {3}},
};

Shape x_shape(const SegCase& c) {
  int64_t n = 0;
  for (int64_t s : c.sizes) n += s;
  Shape shape{n};
  shape.insert(shape.end(), c.features.begin(), c.features.end());
  return shape;
}

Tensor reference(const SegOp& op, const Tensor& x, const Segs& s) {
  const int64_t f = numel(Shape(x.shape().begin() + 1, x.shape().end()));
  Shape shape = x.shape();
  if (!op.per_row) shape[0] = s.count;
  return from_vector(op.ref(x.to_vector<double>(), s.ids, s.count, f), shape);
}

class SegmentOp : public ::testing::TestWithParam<SegOp> {};

TEST_P(SegmentOp, ForwardMatchesReference) {
  const SegOp& op = GetParam();
  for (const SegCase& c : kCases) {
    for (Layout layout : kLayouts) {
      const Segs s = make_segs(c.sizes, layout);
      const Tensor x = make(x_shape(c), 2, -2, 2);
      const Tensor want = reference(op, x, s);
      const std::string where = std::string(c.name) + " " + layout_name(layout);
      EXPECT_TRUE(all_close(run(op, x, s, s.seg), want, 1e-12, 1e-12)) << where;
      EXPECT_TRUE(all_close(run(op, testing::noncontiguous(x), s, s.seg), want, 1e-12, 1e-12))
          << where << " non-contiguous";
      const Tensor y32 = run(op, x.astype(Dtype::f32), s, s.seg);
      EXPECT_EQ(y32.dtype(), Dtype::f32);
      EXPECT_TRUE(all_close(y32, reference(op, x.astype(Dtype::f32), s), 1e-5, 1e-6))
          << where << " float32";
    }
  }
}

TEST_P(SegmentOp, Derivatives) {
  const SegOp& op = GetParam();
  for (const SegCase& c : kCases) {
    for (Layout layout : {Layout::offsets64, Layout::shuffled_ids32}) {
      const Segs s = make_segs(c.sizes, layout);
      // -inf results (empty segments of max and logsumexp) are mapped to 0 so finite differences
      // are defined; their zero gradient must still come through without NaN. square() makes the
      // second derivative depend on x.
      const Fn f = [&op, &s](const Tensors& in) {
        const Tensor y = run(op, in[0], s, in[1]);
        return Tensors{square(where(y > -kInf, y, 0.0))};
      };
      SCOPED_TRACE(std::string(c.name) + " " + layout_name(layout));
      testing::expect_derivatives(f, {make(x_shape(c), 3, -2, 2), s.seg});
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Segment, SegmentOp, ::testing::ValuesIn(seg_ops()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Segment, SoftmaxSumsToOnePerSegment) {
  const Segs s = make_segs({3, 0, 1, 4}, Layout::shuffled_ids32);
  const Tensor x = make({8, 2}, 4, -5, 5);
  const Tensor total = segment_sum(segment_softmax(x, s.seg, s.count), s.seg, s.count);
  EXPECT_TRUE(
      all_close(total, tensor({{1.0, 1.0}, {0.0, 0.0}, {1.0, 1.0}, {1.0, 1.0}}), 1e-12, 1e-12));
}

TEST(Segment, LogsumexpEqualsDenseMaskedLogSumExp) {
  const Segs s = make_segs({2, 4, 0, 3}, Layout::shuffled_ids32);
  const Tensor x = make({9}, 5, -3, 3);
  // Dense (S, N): row s holds x where the row belongs to segment s and -inf elsewhere.
  const Tensor ids = s.seg.astype(Dtype::i64);
  const Tensor mask = unsqueeze(arange(s.count), 1) == unsqueeze(ids, 0);
  const Tensor dense = where(mask, broadcast_to(unsqueeze(x, 0), {s.count, 9}), -kInf);
  const auto dv = dense.to_vector<double>();
  std::vector<double> want;
  for (int64_t r = 0; r < s.count; ++r) {
    double total = 0;
    for (int64_t j = 0; j < 9; ++j) total += std::exp(dv[r * 9 + j]);
    want.push_back(std::log(total));
  }
  EXPECT_TRUE(
      all_close(segment_logsumexp(x, s.seg, s.count), from_vector(want, {s.count}), 1e-12, 1e-12));
  // Stable for large values, where the dense sum by hand would overflow.
  const auto big = segment_logsumexp(x + 1000.0, s.seg, s.count).to_vector<double>();
  for (int64_t r = 0; r < s.count; ++r) {
    if (want[r] == -kInf) {
      EXPECT_EQ(big[r], -kInf);
    } else {
      EXPECT_NEAR(big[r], want[r] + 1000.0, 1e-9);
    }
  }
}

TEST(Segment, EmptyAndAllMinusInfSegmentsHaveZeroGradient) {
  // Segment 0 is empty, segment 1 is all -inf, segment 2 is ordinary.
  const Tensor offsets = tensor<int64_t>({0, 0, 2, 4});
  const Tensor x = tensor({-kInf, -kInf, 1.0, 2.0});
  const auto lse = segment_logsumexp(x, offsets).to_vector<double>();
  EXPECT_EQ(lse[0], -kInf);
  EXPECT_EQ(lse[1], -kInf);
  EXPECT_NEAR(lse[2], std::log(std::exp(1.0) + std::exp(2.0)), 1e-12);
  const Tensor soft = segment_softmax(x, offsets);
  const double p = std::exp(1.0) / (std::exp(1.0) + std::exp(2.0));
  EXPECT_TRUE(all_close(soft, tensor({0.0, 0.0, p, 1 - p}), 1e-12, 1e-12));
  // d(sum of lse)/dx is the softmax: 0 for the -inf rows, no NaN anywhere.
  const Fn f = [&offsets](const Tensors& in) { return Tensors{segment_logsumexp(in[0], offsets)}; };
  const Tensor g = vjp(f, {x}, {ones({3}, Dtype::f64)}).second[0];
  EXPECT_TRUE(all_close(g, tensor({0.0, 0.0, p, 1 - p}), 1e-12, 1e-12));
  const Tensor gs =
      vjp([&offsets](const Tensors& in) { return Tensors{segment_softmax(in[0], offsets)}; }, {x},
          {tensor({1.0, 2.0, 3.0, 4.0})})
          .second[0];
  for (double v : gs.to_vector<double>()) EXPECT_FALSE(std::isnan(v));
}

TEST(Segment, MaxTiesShareTheGradientAndNanPropagates) {
  const Tensor offsets = tensor<int32_t>({0, 3, 4});
  const Tensor g = grad([&offsets](const Tensor& x) { return sum(segment_max(x, offsets)); })(
      tensor({1.0, 1.0, 0.0, 2.0}));
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{0.5, 0.5, 0.0, 1.0}));
  const auto m = segment_max(tensor<double>({1.0, NAN, 0.0, 2.0}), offsets).to_vector<double>();
  EXPECT_TRUE(std::isnan(m[0]));
  EXPECT_EQ(m[1], 2.0);
}

TEST(Segment, IntegerAndBoolInputs) {
  const Tensor ids = tensor<int64_t>({2, 0, 2});
  EXPECT_EQ(segment_sum(tensor<int32_t>({5, 7, 1}), ids, 4).to_vector<int>(),
            (std::vector<int>{7, 0, 6, 0}));
  const Tensor m = segment_max(tensor<int32_t>({5, 7, 1}), ids, 4);
  EXPECT_EQ(m.dtype(), Dtype::i32);
  EXPECT_EQ(m.to_vector<int>(), (std::vector<int>{7, std::numeric_limits<int>::lowest(), 5,
                                                  std::numeric_limits<int>::lowest()}));
  const Tensor counts = segment_sum(tensor<bool>({true, true, false}), ids, 3);
  EXPECT_EQ(counts.dtype(), Dtype::i64);
  EXPECT_EQ(counts.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
}

TEST(Segment, ConversionsBetweenOffsetsAndIds) {
  const Tensor offsets = tensor<int32_t>({0, 2, 2, 5, 6});
  const Tensor ids = segment_ids_from_offsets(offsets);
  EXPECT_EQ(ids.dtype(), Dtype::i32);
  EXPECT_EQ(ids.to_vector<int>(), (std::vector<int>{0, 0, 2, 2, 2, 3}));
  EXPECT_EQ(segment_ids_from_offsets(offsets, 6).to_vector<int>(), ids.to_vector<int>());
  const Tensor back = offsets_from_ids(ids.astype(Dtype::i64), 4);
  EXPECT_EQ(back.dtype(), Dtype::i64);
  EXPECT_EQ(back.to_vector<int>(), offsets.to_vector<int>());
  // Trailing empty segments and no rows at all.
  EXPECT_EQ(offsets_from_ids(tensor<int64_t>({0, 0, 1}), 4).to_vector<int>(),
            (std::vector<int>{0, 2, 3, 3, 3}));
  EXPECT_EQ(offsets_from_ids(zeros({0}, Dtype::i64), 2).to_vector<int>(),
            (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(segment_ids_from_offsets(tensor<int64_t>({0})).shape(), (Shape{0}));
}

TEST(Segment, LargeInputsAreDeterministicAndMatchSerialSums) {
  // Enough rows to run on several threads; float32 sums accumulate in double in row order, so
  // the result equals a serial pass bit for bit, for shuffled ids and for CSR offsets alike.
  const int64_t n = 60000, f = 3, count = 1000;
  Generator gen(7);
  const Tensor ids = randint(0, count, {n}, Dtype::i64, Device::cpu(), &gen);
  const Tensor x = make({n, f}, 8, -1, 1, Dtype::f32);
  auto serial = [&](const std::vector<int64_t>& row_ids) {
    const auto xv = x.to_vector<double>();
    std::vector<double> acc(static_cast<size_t>(count * f), 0.0);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t j = 0; j < f; ++j) acc[row_ids[r] * f + j] += xv[r * f + j];
    }
    return std::vector<float>(acc.begin(), acc.end());
  };
  const auto idv = ids.to_vector<int64_t>();
  for (int rep = 0; rep < 2; ++rep) {
    EXPECT_EQ(segment_sum(x, ids, count).to_vector<float>(), serial(idv));
  }
  auto sorted = idv;
  std::sort(sorted.begin(), sorted.end());
  const Tensor offsets = offsets_from_ids(from_vector(sorted, {n}), count);
  EXPECT_EQ(segment_sum(x, offsets).to_vector<float>(), serial(sorted));
  EXPECT_TRUE(all_close(segment_max(x, offsets),
                        from_vector(ref_max(x.to_vector<double>(), sorted, count, f), {count, f})));
  // Few segments with many features: the features are split among threads.
  const Tensor wide = make({64, 4096}, 9);
  const Tensor one = tensor<int64_t>({0, 64});
  EXPECT_TRUE(all_close(segment_sum(wide, one), sum(wide, {0}, true), 1e-12, 1e-12));
  EXPECT_TRUE(
      all_close(segment_max(testing::noncontiguous(wide), one),
                from_vector(ref_max(wide.to_vector<double>(), std::vector<int64_t>(64, 0), 1, 4096),
                            {1, 4096})));
}

TEST(Segment, Errors) {
  using testing::throws_error;
  const Tensor x = zeros({6, 2});
  EXPECT_TRUE(throws_error(
      [&] {
        segment_sum(x, tensor<int64_t>({0, 4, 3, 6}));
      },
      {"[segment_sum]", "nondecreasing", "offsets[2] = 3", "offsets[1] = 4"}));
  EXPECT_TRUE(throws_error(
      [&] {
        segment_mean(x, tensor<int64_t>({1, 6}));
      },
      {"[segment_mean]", "start at 0", "offsets[0] = 1"}));
  EXPECT_TRUE(throws_error(
      [&] {
        segment_max(x, tensor<int32_t>({0, 2, 5}));
      },
      {"[segment_max]", "last offset", "5", "rows 6"}));
  EXPECT_TRUE(throws_error(
      [&] {
        segment_sum(x, tensor<int64_t>({0, 1, 2, 2, 9, 1}), 3);
      },
      {"[segment_sum]", "ids[4] = 9", "[0, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        segment_logsumexp(x, tensor<int32_t>({0, 1, -1, 0, 0, 0}), 3);
      },
      {"[segment_logsumexp]", "ids[2] = -1", "[0, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        segment_softmax(x, tensor<int64_t>({0, 1}), 3);
      },
      {"[segment_softmax]", "(6, 2)", "(2,)"}));
  EXPECT_TRUE(throws_error([&] { segment_sum(x, zeros({6}, Dtype::i64), -1); },
                           {"[segment_sum]", "num_segments", "-1"}));
  EXPECT_TRUE(throws_error(
      [&] {
        segment_sum(x, tensor({0.0, 6.0}));
      },
      {"[segment_sum]", "float64"}));
  EXPECT_TRUE(throws_error(
      [&] {
        segment_sum(x, zeros({2, 2}, Dtype::i64));
      },
      {"[segment_sum]", "1-D", "(2, 2)"}));
  EXPECT_TRUE(
      throws_error([&] { segment_sum(x, zeros({0}, Dtype::i64)); }, {"[segment_sum]", "(0,)"}));
  EXPECT_TRUE(throws_error(
      [] {
        segment_sum(scalar(1.0), tensor<int64_t>({0, 1}));
      },
      {"[segment_sum]", "scalar"}));
  EXPECT_TRUE(throws_error(
      [] {
        segment_logsumexp(zeros({2}, Dtype::i32), tensor<int64_t>({0, 2}));
      },
      {"[segment_logsumexp]", "int32"}));
  EXPECT_TRUE(throws_error(
      [] {
        segment_mean(zeros({2}, Dtype::i64), tensor<int64_t>({0, 2}));
      },
      {"[segment_mean]", "int64"}));
  EXPECT_TRUE(throws_error(
      [] {
        offsets_from_ids(tensor<int64_t>({0, 2, 1}), 3);
      },
      {"[offsets_from_ids]", "sorted", "ids[2] = 1", "ids[1] = 2"}));
  EXPECT_TRUE(throws_error(
      [] {
        offsets_from_ids(tensor<int64_t>({0, 3}), 3);
      },
      {"[offsets_from_ids]", "ids[1] = 3", "[0, 3)"}));
  EXPECT_TRUE(throws_error(
      [] {
        segment_ids_from_offsets(tensor<int64_t>({0, 3, 2}));
      },
      {"[segment_ids_from_offsets]", "nondecreasing"}));
  EXPECT_TRUE(throws_error(
      [] {
        segment_ids_from_offsets(tensor<int64_t>({0, 3}), 4);
      },
      {"[segment_ids_from_offsets]", "last offset", "rows 4"}));
}

}  // namespace
}  // namespace basin
