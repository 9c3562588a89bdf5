// Metrics against scikit-learn (tests/fixtures/metrics_fixture.py: hand-made and random cases with
// many tied scores), the threshold sweep against a brute-force sweep, the Tensor overloads against
// the span ones, and the error messages.
#include "data/metrics.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace basin::data {
namespace {
using basin::testing::throws_error;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The fields of one fixture case ("scores", "labels", "roc_auc", ...) by name.
using Case = std::map<std::string, std::vector<double>>;

/// The cases of metrics_fixture.txt by name; each line is "case field count values...".
const std::map<std::string, Case>& fixture() {
  static const std::map<std::string, Case> cases = [] {
    const auto path =
        std::filesystem::path(__FILE__).parent_path() / "../fixtures/metrics_fixture.txt";
    std::ifstream in(path);
    if (!in) fail("[metrics_test] cannot open {}", path.string());
    std::map<std::string, Case> out;
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream s(line);
      std::string name, field;
      size_t count = 0;
      s >> name >> field >> count;
      std::vector<double> values(count);
      for (double& v : values) s >> v;
      if (!s) fail("[metrics_test] bad fixture line for {} {}", name, field);
      out[name][field] = values;
    }
    return out;
  }();
  return cases;
}

/// The names of the fixture cases that have `field`.
std::vector<std::string> cases_with(const std::string& field) {
  std::vector<std::string> names;
  for (const auto& [name, c] : fixture()) {
    if (c.count(field)) names.push_back(name);
  }
  return names;
}

const std::vector<double>& get(const Case& c, const std::string& field) {
  auto it = c.find(field);
  if (it == c.end()) fail("[metrics_test] the case has no '{}'", field);
  return it->second;
}

std::vector<int64_t> as_int(const std::vector<double>& v) {
  return std::vector<int64_t>(v.begin(), v.end());
}

std::vector<uint8_t> as_mask(const std::vector<double>& v) {
  std::vector<uint8_t> m(v.size());
  for (size_t i = 0; i < v.size(); ++i) m[i] = v[i] != 0.0;
  return m;
}

::testing::AssertionResult near(double got, double want, double rtol = 1e-12) {
  if (std::abs(got - want) <= rtol * std::abs(want) + 1e-15) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want;
}

// --- against scikit-learn ---------------------------------------------------------------------

TEST(MetricsTest, ScoreMetricsMatchSklearn) {
  const auto names = cases_with("roc_auc");
  ASSERT_GE(names.size(), 11u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const Case& c = fixture().at(name);
    const auto& scores = get(c, "scores");
    const auto labels = as_int(get(c, "labels"));
    EXPECT_TRUE(near(roc_auc(scores, labels), get(c, "roc_auc")[0]));
    EXPECT_TRUE(near(average_precision(scores, labels), get(c, "average_precision")[0]));
    const ThresholdF1 best = best_macro_f1(scores, labels);
    EXPECT_EQ(best.threshold, get(c, "best_threshold")[0]);
    EXPECT_TRUE(near(best.macro_f1, get(c, "best_macro_f1")[0]));
  }
}

TEST(MetricsTest, ClassMetricsMatchSklearn) {
  const auto names = cases_with("macro_f1");
  ASSERT_GE(names.size(), 7u);
  int binary = 0;
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const Case& c = fixture().at(name);
    const auto pred = as_int(get(c, "pred"));
    const auto labels = as_int(get(c, "labels"));
    const auto classes = static_cast<int64_t>(get(c, "num_classes")[0]);
    EXPECT_TRUE(near(accuracy(pred, labels), get(c, "accuracy")[0]));
    EXPECT_EQ(confusion_matrix(pred, labels, classes).to_vector<int64_t>(),
              as_int(get(c, "confusion")));
    EXPECT_TRUE(near(macro_f1(pred, labels, classes), get(c, "macro_f1")[0]));
    if (classes == 2) {
      ++binary;
      EXPECT_TRUE(near(precision(pred, labels), get(c, "precision")[0]));
      EXPECT_TRUE(near(recall(pred, labels), get(c, "recall")[0]));
      EXPECT_TRUE(near(f1(pred, labels), get(c, "f1")[0]));
    }
  }
  EXPECT_GE(binary, 5);
}

TEST(MetricsTest, ReconstructionMetricsMatchNumpy) {
  const auto names = cases_with("psnr");
  ASSERT_GE(names.size(), 2u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const Case& c = fixture().at(name);
    const auto& a = get(c, "a");
    const auto& b = get(c, "b");
    const auto mask = as_mask(get(c, "mask"));
    const double max_value = get(c, "max_value")[0];
    EXPECT_TRUE(near(mse(a, b), get(c, "mse")[0]));
    EXPECT_TRUE(near(psnr(a, b, max_value), get(c, "psnr")[0]));
    EXPECT_TRUE(near(masked_mse(a, b, mask), get(c, "masked_mse")[0]));
    EXPECT_TRUE(near(masked_psnr(a, b, mask, max_value), get(c, "masked_psnr")[0]));
  }
}

// --- properties and independent references ----------------------------------------------------

/// Deterministic scores rounded to `levels` values (many ties) and labels leaning on them.
void tied_case(uint64_t seed, int64_t n, double levels, std::vector<double>& scores,
               std::vector<int64_t>& labels) {
  const auto u = basin::testing::make({n}, seed, 0.0, 1.0).to_vector<double>();
  const auto v = basin::testing::make({n}, seed + 1, 0.0, 1.0).to_vector<double>();
  scores.resize(n);
  labels.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = v[i] < 0.3 + 0.4 * u[i];
    scores[i] = std::round(u[i] * levels) / levels;
  }
}

TEST(MetricsTest, BestMacroF1MatchesABruteForceSweep) {
  for (uint64_t seed : {1, 2, 3}) {
    std::vector<double> scores;
    std::vector<int64_t> labels;
    tied_case(seed, 400, 10.0 * static_cast<double>(seed), scores, labels);
    std::vector<double> thresholds = scores;
    std::sort(thresholds.begin(), thresholds.end());
    thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
    ASSERT_LE(thresholds.size(), 31u);  // ties on purpose
    ThresholdF1 want{0.0, -1.0};
    for (double t : thresholds) {  // ascending; a later one must be better by more than rounding
      std::vector<int64_t> pred(scores.size());
      for (size_t i = 0; i < scores.size(); ++i) pred[i] = scores[i] >= t;
      const double value = macro_f1(pred, labels, 2);
      if (value > want.macro_f1 + 1e-12) want = {t, value};
    }
    const ThresholdF1 got = best_macro_f1(scores, labels);
    EXPECT_EQ(got.threshold, want.threshold) << "seed " << seed;
    EXPECT_TRUE(near(got.macro_f1, want.macro_f1)) << "seed " << seed;
  }
}

TEST(MetricsTest, BestMacroF1TakesTheSmallestOfTiedThresholds) {
  // Thresholds 2 and 4 both give macro-F1 11/15.
  const std::vector<double> scores = {4, 3, 2, 1};
  const std::vector<int64_t> labels = {1, 0, 1, 0};
  const ThresholdF1 best = best_macro_f1(scores, labels);
  EXPECT_EQ(best.threshold, 2.0);
  EXPECT_EQ(best.macro_f1, 11.0 / 15.0);
}

TEST(MetricsTest, RocAucIsRankBasedAndCountsTiesAsHalf) {
  std::vector<double> scores;
  std::vector<int64_t> labels;
  tied_case(7, 300, 8.0, scores, labels);
  std::vector<double> negated(scores.size()), warped(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) {
    negated[i] = -scores[i];
    warped[i] = std::exp(3.0 * scores[i]) - 5.0;  // strictly increasing
  }
  const double auc = roc_auc(scores, labels);
  EXPECT_GT(auc, 0.6);
  EXPECT_TRUE(near(roc_auc(negated, labels), 1.0 - auc));
  EXPECT_EQ(roc_auc(warped, labels), auc);
  // Mann-Whitney by pairs: a positive above a negative counts 1, a tie 1/2.
  double pairs = 0.0, wins = 0.0;
  for (size_t i = 0; i < scores.size(); ++i) {
    for (size_t j = 0; j < scores.size(); ++j) {
      if (labels[i] != 1 || labels[j] != 0) continue;
      pairs += 1.0;
      wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
    }
  }
  EXPECT_TRUE(near(auc, wins / pairs));
  // Infinite scores are ordinary extremes.
  EXPECT_EQ(roc_auc(std::vector<double>{-kInf, 0.0, kInf}, std::vector<int64_t>{0, 1, 1}), 1.0);
}

TEST(MetricsTest, AccuracyFromLogitsTakesTheFirstMaximum) {
  const Tensor logits = from_vector<double>({0.1, 0.9, 0.0,    //
                                             2.0, 2.0, 1.0,    // tie: class 0
                                             -1.0, -3.0, 5.0,  //
                                             0.5, 0.2, 0.4},
                                            {4, 3});
  EXPECT_EQ(accuracy_from_logits(logits, from_vector<int64_t>({1, 0, 2, 1}, {4})), 0.75);
  EXPECT_EQ(accuracy_from_logits(logits, from_vector<int64_t>({1, 1, 2, 0}, {4})), 0.75);
  EXPECT_EQ(accuracy_from_logits(logits.astype(Dtype::f32),
                                 from_vector<float>({1.0f, 0.0f, 2.0f, 0.0f}, {4})),
            1.0);
  // Same as comparing basin's argmax with the labels.
  const Tensor x = basin::testing::make({50, 7}, 11);
  Generator gen(12);
  const Tensor y = randint(0, 7, {50}, Dtype::i64, Device::cpu(), &gen);
  EXPECT_EQ(accuracy_from_logits(x, y), accuracy(argmax(x, 1), y));
}

TEST(MetricsTest, TensorOverloadsMatchSpans) {
  const Case& c = fixture().at("random_rounded");
  const auto& scores = get(c, "scores");
  const auto labels = as_int(get(c, "labels"));
  const auto n = static_cast<int64_t>(scores.size());
  const Tensor s = from_vector(scores, {n});
  const Tensor y = from_vector(labels, {n});
  const Tensor y_float = y.astype(Dtype::f32);
  const Tensor y_bool = y.astype(Dtype::boolean);
  EXPECT_EQ(roc_auc(s, y), roc_auc(scores, labels));
  EXPECT_EQ(roc_auc(reshape(s, {n, 1}), y_float), roc_auc(scores, labels));
  EXPECT_EQ(average_precision(s, y_bool), average_precision(scores, labels));
  EXPECT_EQ(best_macro_f1(s, y).threshold, best_macro_f1(scores, labels).threshold);
  // float32 scores are read as their float32 values.
  const Tensor s32 = s.astype(Dtype::f32);
  EXPECT_EQ(roc_auc(s32, y), roc_auc(s32.to_vector<double>(), labels));

  const Case& k = fixture().at("multi_random");
  const auto pred = as_int(get(k, "pred"));
  const auto truth = as_int(get(k, "labels"));
  const auto m = static_cast<int64_t>(pred.size());
  const Tensor p = from_vector(pred, {m}), t = from_vector(truth, {m}).astype(Dtype::i32);
  EXPECT_EQ(accuracy(p, t), accuracy(pred, truth));
  EXPECT_EQ(macro_f1(p, t, 4), macro_f1(pred, truth, 4));
  EXPECT_EQ(confusion_matrix(p, t, 4).shape(), (Shape{4, 4}));
  EXPECT_EQ(confusion_matrix(p, t, 4).dtype(), Dtype::i64);
  EXPECT_EQ(confusion_matrix(p, t, 4).to_vector<int64_t>(), as_int(get(k, "confusion")));

  const Case& b = fixture().at("binary_random");
  const Tensor bp = from_vector(as_int(get(b, "pred")), {200});
  const Tensor bt = from_vector(as_int(get(b, "labels")), {200}).astype(Dtype::u8);
  EXPECT_EQ(precision(bp, bt), get(b, "precision")[0]);
  EXPECT_EQ(recall(bp, bt), get(b, "recall")[0]);
  EXPECT_EQ(f1(bp, bt), get(b, "f1")[0]);
}

TEST(MetricsTest, MaskedMetricsBroadcastTheMask) {
  const Tensor a = basin::testing::make({2, 5, 4}, 21, 0.0, 1.0);  // (B, N, P) patches
  const Tensor b = basin::testing::make({2, 5, 4}, 22, 0.0, 1.0);
  const Tensor mask =
      from_vector<float>({1, 0, 0, 0.5f, 0, 0, 1, 0, 0, 0}, {2, 5, 1});  // (B, N, 1)
  std::vector<uint8_t> flat(40);
  for (size_t i = 0; i < flat.size(); ++i) flat[i] = i / 4 == 0 || i / 4 == 3 || i / 4 == 6;
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  EXPECT_EQ(masked_mse(a, b, mask), masked_mse(av, bv, flat));
  EXPECT_EQ(masked_psnr(a, b, mask, 2.0), masked_psnr(av, bv, flat, 2.0));
  // By hand: the mean over the 12 selected elements.
  double sum = 0.0;
  for (size_t i = 0; i < 40; ++i) sum += flat[i] ? (av[i] - bv[i]) * (av[i] - bv[i]) : 0.0;
  EXPECT_TRUE(near(masked_mse(av, bv, flat), sum / 12.0));
  EXPECT_TRUE(near(mse(a, b), mse(av, bv)));
  EXPECT_TRUE(near(psnr(a, b), -10.0 * std::log10(mse(av, bv))));
}

TEST(MetricsTest, PsnrOfEqualInputsIsInfinite) {
  const std::vector<double> a = {0.1, 0.2, 0.3}, b = {0.1, 0.2, 0.9};
  EXPECT_EQ(psnr(a, a), kInf);
  EXPECT_EQ(masked_psnr(a, b, std::vector<uint8_t>{1, 1, 0}), kInf);
  EXPECT_EQ(mse(a, a), 0.0);
  EXPECT_TRUE(std::isnan(mse(std::vector<double>{kNaN}, std::vector<double>{0.0})));
}

// --- errors -------------------------------------------------------------------------------------

TEST(MetricsTest, Errors) {
  const std::vector<double> s3 = {0.1, 0.2, 0.3}, s2 = {0.1, 0.2}, empty_s;
  const std::vector<int64_t> y3 = {0, 1, 1}, y2 = {0, 1}, empty_y;
  EXPECT_TRUE(throws_error([&] { roc_auc(s3, y2); }, {"[roc_auc]", "3 elements", "has 2"}));
  EXPECT_TRUE(throws_error([&] { roc_auc(empty_s, empty_y); }, {"[roc_auc]", "empty"}));
  EXPECT_TRUE(throws_error(
      [&] {
        roc_auc(std::vector<double>{0.1, kNaN}, y2);
      },
      {"[roc_auc]", "scores[1] is NaN"}));
  EXPECT_TRUE(throws_error(
      [&] {
        roc_auc(s3, std::vector<int64_t>{0, 2, 1});
      },
      {"[roc_auc]", "0 or 1", "labels[1] = 2"}));
  EXPECT_TRUE(throws_error(
      [&] {
        roc_auc(s3, std::vector<int64_t>{1, 1, 1});
      },
      {"[roc_auc]", "both classes", "every label is 1"}));
  EXPECT_TRUE(throws_error(
      [&] {
        best_macro_f1(s3, std::vector<int64_t>{0, 0, 0});
      },
      {"[best_macro_f1]", "both classes", "every label is 0"}));
  EXPECT_TRUE(throws_error(
      [&] {
        average_precision(s3, std::vector<int64_t>{0, 0, 0});
      },
      {"[average_precision]", "at least one positive"}));
  EXPECT_TRUE(throws_error(
      [&] {
        average_precision(s3, std::vector<int64_t>{0, -1, 0});
      },
      {"[average_precision]", "labels[1] = -1"}));

  EXPECT_TRUE(throws_error([&] { accuracy(y3, y2); }, {"[accuracy]", "predicted has 3"}));
  EXPECT_TRUE(throws_error([&] { accuracy(empty_y, empty_y); }, {"[accuracy]", "empty"}));
  EXPECT_TRUE(throws_error(
      [&] {
        precision(std::vector<int64_t>{0, 3}, y2);
      },
      {"[precision]", "predicted[1] = 3"}));
  EXPECT_TRUE(throws_error(
      [&] {
        recall(y2, std::vector<int64_t>{5, 0});
      },
      {"[recall]", "labels[0] = 5"}));
  EXPECT_TRUE(throws_error([&] { f1(y3, y2); }, {"[f1]", "predicted has 3", "labels has 2"}));
  EXPECT_TRUE(throws_error(
      [&] {
        macro_f1(y3, std::vector<int64_t>{0, 1, 4}, 3);
      },
      {"[macro_f1]", "labels[2] = 4", "outside [0, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        confusion_matrix(std::vector<int64_t>{0, -1}, y2, 2);
      },
      {"[confusion_matrix]", "predicted[1] = -1"}));
  EXPECT_TRUE(throws_error([&] { confusion_matrix(y2, y2, 0); },
                           {"[confusion_matrix]", "num_classes must be positive"}));

  const Tensor logits = zeros({3, 2}, Dtype::f32);
  EXPECT_TRUE(throws_error([&] { accuracy_from_logits(zeros({6}), zeros({6})); },
                           {"[accuracy_from_logits]", "(N, C)"}));
  EXPECT_TRUE(throws_error([&] { accuracy_from_logits(logits, zeros({2})); },
                           {"[accuracy_from_logits]", "labels must have shape (3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        accuracy_from_logits(logits, from_vector<int64_t>({0, 2, 1}, {3}));
      },
      {"[accuracy_from_logits]", "labels[1] = 2", "outside [0, 2)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        accuracy_from_logits(from_vector<double>({0, kNaN}, {1, 2}), zeros({1}));
      },
      {"[accuracy_from_logits]", "logits[0, 1] is NaN"}));
  EXPECT_TRUE(throws_error([&] { accuracy_from_logits(Tensor(), zeros({1})); },
                           {"[accuracy_from_logits]", "logits is an undefined tensor"}));
  EXPECT_TRUE(throws_error(
      [&] {
        roc_auc(from_vector<double>({0.1, 0.2}, {2}), from_vector<double>({0, 0.5}, {2}));
      },
      {"[roc_auc]", "whole numbers", "labels[1] = 0.5"}));

  EXPECT_TRUE(throws_error([&] { mse(s3, s2); }, {"[mse]", "a has 3", "b has 2"}));
  EXPECT_TRUE(throws_error([&] { psnr(empty_s, empty_s); }, {"[psnr]", "empty"}));
  EXPECT_TRUE(throws_error([&] { psnr(s3, s3, 0.0); }, {"[psnr]", "max_value", "got 0"}));
  EXPECT_TRUE(throws_error([&] { psnr(s3, s3, kInf); }, {"[psnr]", "max_value"}));
  EXPECT_TRUE(throws_error(
      [&] {
        masked_mse(s3, s3, std::vector<uint8_t>{1, 0});
      },
      {"[masked_mse]", "mask has 2"}));
  EXPECT_TRUE(throws_error(
      [&] {
        masked_mse(s3, s3, std::vector<uint8_t>{0, 0, 0});
      },
      {"[masked_mse]", "selects no element"}));
  EXPECT_TRUE(throws_error(
      [&] {
        masked_psnr(s3, s3, std::vector<uint8_t>{0, 0, 0});
      },
      {"[masked_psnr]", "selects no element"}));
  EXPECT_TRUE(throws_error(
      [&] {
        mse(zeros({2, 3}), zeros({3, 2}));
      },
      {"[mse]", "same shape", "(2, 3)", "(3, 2)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        masked_mse(zeros({2, 3}), zeros({2, 3}), ones({3, 1}));
      },
      {"[masked_mse]", "cannot be broadcast"}));
  EXPECT_TRUE(throws_error(
      [&] {
        masked_psnr(zeros({2, 3}), zeros({2, 3}), ones({2, 1, 3}));
      },
      {"[masked_psnr]", "(2, 1, 3) does not broadcast", "(2, 3)"}));
}

}  // namespace
}  // namespace basin::data
