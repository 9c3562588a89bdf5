// Patch masks: spec parsing and printing, exact counts, determinism, block shapes, mixtures,
// errors.
#include "data/masking.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "tests/test_util.h"

namespace basin::data {
namespace {

using basin::testing::throws_error;

// The masks of `batch` images as rows of values.
std::vector<std::vector<int64_t>> rows(const Tensor& masks) {
  const auto v = masks.to_vector<int64_t>();
  const int64_t n = masks.shape(1);
  std::vector<std::vector<int64_t>> out;
  for (int64_t b = 0; b < masks.shape(0); ++b) {
    out.emplace_back(v.begin() + b * n, v.begin() + (b + 1) * n);
  }
  return out;
}

int64_t count_of(const std::vector<int64_t>& row, int64_t value) {
  return std::count(row.begin(), row.end(), value);
}

// The number of 4-connected components of the scored (non-zero) cells of a gh × gw mask.
int components(const std::vector<int64_t>& row, int64_t gh, int64_t gw) {
  std::vector<int> seen(row.size(), 0);
  int n = 0;
  for (int64_t start = 0; start < gh * gw; ++start) {
    if (row[start] == 0 || seen[start]) continue;
    ++n;
    std::vector<int64_t> stack = {start};
    seen[start] = 1;
    while (!stack.empty()) {
      const int64_t i = stack.back();
      stack.pop_back();
      const int64_t r = i / gw, c = i % gw;
      for (const auto& [dr, dc] : {std::pair{-1, 0}, {1, 0}, {0, -1}, {0, 1}}) {
        const int64_t rr = r + dr, cc = c + dc;
        if (rr < 0 || rr >= gh || cc < 0 || cc >= gw) continue;
        const int64_t j = rr * gw + cc;
        if (row[j] != 0 && !seen[j]) {
          seen[j] = 1;
          stack.push_back(j);
        }
      }
    }
  }
  return n;
}

// --- specs -----------------------------------------------------------------------------------

TEST(MaskSpec, ParsesEveryForm) {
  MaskSpec s = parse_mask_spec("scatter:0.5");
  EXPECT_EQ(s.strategy, MaskSpec::Strategy::scatter);
  EXPECT_TRUE(s.replaced.is_ratio);
  EXPECT_EQ(s.replaced.ratio, 0.5);
  EXPECT_EQ(s.kept, MaskAmount{});

  s = parse_mask_spec("scatter:32");
  EXPECT_FALSE(s.replaced.is_ratio);
  EXPECT_EQ(s.replaced.count, 32);
  EXPECT_EQ(parse_mask_spec("scatter:50%").replaced.resolve(196), 98);
  EXPECT_EQ(parse_mask_spec("scatter:1.0").replaced.resolve(196), 196);
  EXPECT_EQ(parse_mask_spec("scatter:1").replaced.resolve(196), 1);

  s = parse_mask_spec(" multi_scatter: 90, 10 ");
  EXPECT_EQ(s.strategy, MaskSpec::Strategy::scatter);
  EXPECT_EQ(s.replaced.count, 90);
  EXPECT_EQ(s.kept.count, 10);
  EXPECT_EQ(parse_mask_spec("scatter:90,10"), s);

  s = parse_mask_spec("block:0.25x2");
  EXPECT_EQ(s.strategy, MaskSpec::Strategy::block);
  EXPECT_EQ(s.blocks, 2);
  EXPECT_EQ(s.replaced.ratio, 0.25);
  s = parse_mask_spec("block:90,10x3");
  EXPECT_EQ(s.replaced.count, 90);
  EXPECT_EQ(s.kept.count, 10);
  EXPECT_EQ(s.blocks, 3);

  s = parse_mask_spec("mixture:scatter:0.5@0.5,multi_scatter:90,10@0.25,block:49x2@0.25");
  EXPECT_EQ(s.strategy, MaskSpec::Strategy::mixture);
  ASSERT_EQ(s.components.size(), 3u);
  EXPECT_EQ(s.probabilities, (std::vector<double>{0.5, 0.25, 0.25}));
  EXPECT_EQ(s.components[1].kept.count, 10);
  EXPECT_EQ(s.components[2].blocks, 2);

  // Canonical text, which parses back to the same spec.
  const std::pair<const char*, const char*> canonical[] = {
      {"scatter:0.5", "scatter:0.5"},
      {"scatter: 32", "scatter:32"},
      {"scatter:1.0", "scatter:1.0"},
      {"scatter:50%", "scatter:0.5"},
      {"scatter:90,10", "multi_scatter:90,10"},
      {"block:49", "block:49"},
      {"block:0.25,0.05x2", "block:0.25,0.05x2"},
      {"mixture:scatter:0.5@0.5,block:0.5@0.5", "mixture:scatter:0.5@0.5,block:0.5@0.5"},
      {"mixture: multi_scatter:90,10 @0.7, block:100x1 @0.3",
       "mixture:multi_scatter:90,10@0.7,block:100@0.3"},
  };
  for (const auto& [text, want] : canonical) {
    const MaskSpec spec = parse_mask_spec(text);
    EXPECT_EQ(to_string(spec), want) << text;
    EXPECT_EQ(parse_mask_spec(to_string(spec)), spec) << text;
  }
}

TEST(MaskSpec, RejectsBadSpecs) {
  const auto rejects = [](const std::string& text, const std::string& phrase) {
    return throws_error([&] { parse_mask_spec(text); }, {"[parse_mask_spec]", phrase});
  };
  EXPECT_TRUE(rejects("", "empty"));
  EXPECT_TRUE(rejects("random:0.5", "unknown strategy 'random'"));
  EXPECT_TRUE(rejects("scatter", "'scatter' needs its amounts"));
  EXPECT_TRUE(rejects("scatter:", "amount is empty"));
  EXPECT_TRUE(rejects("scatter:abc", "'abc' is not a count"));
  EXPECT_TRUE(rejects("scatter:-3", "'-3' is not a count"));
  EXPECT_TRUE(rejects("scatter:1.5", "the fraction '1.5' must lie in [0, 1]"));
  EXPECT_TRUE(rejects("scatter:150%", "must lie in [0, 1]"));
  EXPECT_TRUE(rejects("scatter:0.5.1", "'0.5.1' is not a number"));
  EXPECT_TRUE(rejects("scatter:1,2,3", "at most two amounts"));
  EXPECT_TRUE(rejects("multi_scatter:90", "multi_scatter takes two amounts"));
  EXPECT_TRUE(rejects("scatter:3x2", "only block takes a number of blocks"));
  EXPECT_TRUE(rejects("block:4x0", "number of blocks '0' must be a positive integer"));
  EXPECT_TRUE(rejects("block:4x", "number of blocks '' must be a positive integer"));
  EXPECT_TRUE(rejects("mixture:", "needs components"));
  EXPECT_TRUE(rejects("mixture:scatter:0.5", "needs a probability"));
  EXPECT_TRUE(rejects("mixture:scatter:0.5@0.5,block:4@x", "probability 'x' of component"));
  EXPECT_TRUE(rejects("mixture:scatter:0.5@0", "must be a number in (0, 1]"));
  EXPECT_TRUE(rejects("mixture:scatter:0.5@0.3,block:4@0.3", "add up to 0.6, not 1"));
  EXPECT_TRUE(rejects("mixture:mixture:scatter:1@1@1", "cannot hold another mixture"));
  // The message quotes the spec as written.
  EXPECT_TRUE(rejects("scatter:lots", "'scatter:lots'"));
}

// --- scatter ---------------------------------------------------------------------------------

TEST(MaskScatter, ExactCounts) {
  Generator gen(3);
  const Tensor m = make_masks(parse_mask_spec("scatter:32"), 50, 14, 14, &gen);
  EXPECT_EQ(m.dtype(), Dtype::i64);
  EXPECT_EQ(m.shape(), (Shape{50, 196}));
  for (const auto& row : rows(m)) {
    EXPECT_EQ(count_of(row, kMaskReplaced), 32);
    EXPECT_EQ(count_of(row, kMaskVisible), 196 - 32);
  }
  for (const auto& row : rows(make_masks(parse_mask_spec("scatter:0.5"), 20, 14, 14, &gen))) {
    EXPECT_EQ(count_of(row, kMaskReplaced), 98);
  }
  for (const auto& row :
       rows(make_masks(parse_mask_spec("multi_scatter:90,10"), 20, 14, 14, &gen))) {
    EXPECT_EQ(count_of(row, kMaskReplaced), 90);
    EXPECT_EQ(count_of(row, kMaskKeptScored), 10);
    EXPECT_EQ(count_of(row, kMaskVisible), 96);
  }
  // Non-square grids, nothing and everything.
  for (const auto& row : rows(make_masks(parse_mask_spec("scatter:0.25"), 5, 4, 8, &gen))) {
    EXPECT_EQ(count_of(row, kMaskReplaced), 8);
  }
  EXPECT_EQ(make_masks(parse_mask_spec("scatter:0"), 2, 3, 3, &gen).to_vector<int64_t>(),
            std::vector<int64_t>(18, 0));
  EXPECT_EQ(make_masks(parse_mask_spec("scatter:1.0"), 2, 3, 3, &gen).to_vector<int64_t>(),
            std::vector<int64_t>(18, 1));
  EXPECT_EQ(make_masks(parse_mask_spec("scatter:5"), 0, 3, 3, &gen).shape(), (Shape{0, 9}));
}

TEST(MaskScatter, DeterministicAndIndependentOfBatching) {
  const MaskSpec spec = parse_mask_spec("mixture:multi_scatter:90,10@0.5,block:60,5x2@0.5");
  Generator a(11), b(11), c(12);
  const Tensor whole = make_masks(spec, 6, 14, 14, &a);
  EXPECT_EQ(a.offset(), 6u);
  const Tensor first = make_masks(spec, 2, 14, 14, &b);
  const Tensor rest = make_masks(spec, 4, 14, 14, &b);
  auto w = whole.to_vector<int64_t>();
  auto f = first.to_vector<int64_t>();
  const auto r = rest.to_vector<int64_t>();
  f.insert(f.end(), r.begin(), r.end());
  EXPECT_EQ(w, f);
  EXPECT_NE(make_masks(spec, 6, 14, 14, &c).to_vector<int64_t>(), w);
  // Row i is the mask of counter block i.
  for (int64_t i = 0; i < 6; ++i) {
    const auto one = make_mask(spec, 14, 14, 11, static_cast<uint64_t>(i)).to_vector<int64_t>();
    EXPECT_TRUE(std::equal(one.begin(), one.end(), w.begin() + i * 196)) << i;
  }
  // Different images get different masks.
  const auto all = rows(whole);
  EXPECT_EQ(std::set<std::vector<int64_t>>(all.begin(), all.end()).size(), all.size());
}

TEST(MaskScatter, EveryPatchEquallyLikely) {
  Generator gen(5);
  const int64_t batch = 4000;
  const auto v = make_masks(parse_mask_spec("scatter:16"), batch, 8, 8, &gen).to_vector<int64_t>();
  std::vector<int64_t> hits(64, 0);
  for (size_t i = 0; i < v.size(); ++i) hits[i % 64] += v[i];
  // Each patch is masked with probability 1/4: 1000 ± 4 standard deviations (27).
  for (int64_t h : hits) EXPECT_NEAR(static_cast<double>(h), 1000.0, 110.0);
}

// --- blocks ----------------------------------------------------------------------------------

TEST(MaskBlock, OneBlockIsAContiguousRectangle) {
  std::set<std::pair<int64_t, int64_t>> boxes;
  for (const char* text : {"block:32", "block:49", "block:0.3", "block:13"}) {
    const MaskSpec spec = parse_mask_spec(text);
    const int64_t k = spec.replaced.resolve(196);
    Generator gen(21);
    for (const auto& row : rows(make_masks(spec, 200, 14, 14, &gen))) {
      ASSERT_EQ(count_of(row, kMaskReplaced), k) << text;
      EXPECT_EQ(components(row, 14, 14), 1) << text;
      // Every row and column of the block is one run of cells, and the bounding box is full but
      // for part of one row.
      int64_t top = 14, bottom = -1, left = 14, right = -1;
      for (int64_t i = 0; i < 196; ++i) {
        if (row[i] == 0) continue;
        top = std::min(top, i / 14), bottom = std::max(bottom, i / 14);
        left = std::min(left, i % 14), right = std::max(right, i % 14);
      }
      const int64_t h = bottom - top + 1, w = right - left + 1;
      EXPECT_LT(h * w - k, w) << text;
      for (int64_t r = top; r <= bottom; ++r) {
        int64_t runs = 0;
        for (int64_t c = left; c <= right; ++c)
          runs += row[r * 14 + c] != 0 && (c == left || row[r * 14 + c - 1] == 0);
        EXPECT_EQ(runs, 1) << text;
      }
      // The aspect ratio stays within 1:3 and 3:1 (up to rounding).
      EXPECT_LE(h, 3 * w + 2) << text;
      EXPECT_LE(w, 3 * h + 2) << text;
      boxes.insert({h, w});
    }
  }
  // Tall, wide and square-ish blocks all occur.
  const auto tall =
      std::count_if(boxes.begin(), boxes.end(), [](auto b) { return b.first > b.second; });
  const auto wide =
      std::count_if(boxes.begin(), boxes.end(), [](auto b) { return b.first < b.second; });
  EXPECT_GT(tall, 2);
  EXPECT_GT(wide, 2);
}

TEST(MaskBlock, SeveralBlocksKeptPatchesAndOverlaps) {
  Generator gen(8);
  for (const auto& row : rows(make_masks(parse_mask_spec("block:0.25x2"), 100, 14, 14, &gen))) {
    EXPECT_EQ(count_of(row, kMaskReplaced), 49);
    EXPECT_LE(components(row, 14, 14), 2);
  }
  // A block of 100 of which 10 random ones are kept but scored: one region of 100 scored patches.
  for (const auto& row : rows(make_masks(parse_mask_spec("block:90,10"), 100, 14, 14, &gen))) {
    EXPECT_EQ(count_of(row, kMaskReplaced), 90);
    EXPECT_EQ(count_of(row, kMaskKeptScored), 10);
    EXPECT_EQ(components(row, 14, 14), 1);
  }
  // Blocks that cannot all fit apart still give the exact count.
  for (const char* text : {"block:150x5", "block:0.9x7", "block:196", "block:30x40"}) {
    const MaskSpec spec = parse_mask_spec(text);
    for (const auto& row : rows(make_masks(spec, 50, 14, 14, &gen))) {
      EXPECT_EQ(count_of(row, kMaskReplaced), spec.replaced.resolve(196)) << text;
    }
  }
  // A grid one patch high.
  for (const auto& row : rows(make_masks(parse_mask_spec("block:5"), 20, 1, 12, &gen))) {
    EXPECT_EQ(count_of(row, kMaskReplaced), 5);
    EXPECT_EQ(components(row, 1, 12), 1);
  }
}

// --- mixtures and errors ---------------------------------------------------------------------

TEST(MaskMixture, ChoosesStrategiesWithTheirProbabilities) {
  Generator gen(13);
  const int64_t batch = 4000;
  const Tensor m =
      make_masks(parse_mask_spec("mixture:scatter:10@0.3,multi_scatter:20,4@0.5,block:0.25@0.2"),
                 batch, 14, 14, &gen);
  int64_t scatter = 0, multi = 0, block = 0;
  for (const auto& row : rows(m)) {
    const int64_t ones = count_of(row, kMaskReplaced), twos = count_of(row, kMaskKeptScored);
    if (ones == 10 && twos == 0) {
      ++scatter;
    } else if (ones == 20 && twos == 4) {
      ++multi;
    } else if (ones == 49 && twos == 0) {
      ++block;
      EXPECT_EQ(components(row, 14, 14), 1);
    } else {
      ADD_FAILURE() << "a mask of " << ones << " ones and " << twos << " twos";
    }
  }
  // Binomial standard deviations are below 0.008; allow four.
  EXPECT_NEAR(static_cast<double>(scatter) / batch, 0.3, 0.032);
  EXPECT_NEAR(static_cast<double>(multi) / batch, 0.5, 0.032);
  EXPECT_NEAR(static_cast<double>(block) / batch, 0.2, 0.032);
}

TEST(MaskMixture, ErrorsNameTheSpecAndTheGrid) {
  EXPECT_TRUE(throws_error(
      [] { make_masks(parse_mask_spec("scatter:200"), 2, 14, 14); },
      {"[make_masks]", "'scatter:200' asks for 200 patches but the 14 × 14 grid has 196"}));
  EXPECT_TRUE(throws_error(
      [] { make_masks(parse_mask_spec("mixture:scatter:4@0.5,multi_scatter:8,2@0.5"), 1, 3, 3); },
      {"[make_masks]", "'multi_scatter:8,2' asks for 10 patches", "3 × 3 grid has 9"}));
  EXPECT_TRUE(throws_error([] { make_mask(parse_mask_spec("block:10"), 3, 3, 0, 0); },
                           {"[make_mask]", "'block:10'"}));
  EXPECT_TRUE(throws_error([] { make_masks(parse_mask_spec("scatter:1"), 1, 0, 4); },
                           {"[make_masks]", "grid must be positive", "0 × 4"}));
  EXPECT_TRUE(throws_error([] { make_masks(parse_mask_spec("scatter:1"), -1, 2, 2); },
                           {"[make_masks]", "batch must be non-negative"}));
}

}  // namespace
}  // namespace basin::data
