// Evaluation metrics on the host; the references are scikit-learn's
// (tests/fixtures/metrics_fixture.py).
#include "data/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "core/ops.h"

namespace basin::data {
namespace {

// --- argument checks ----------------------------------------------------------------------------

void check_lengths(const char* who, const char* a_name, size_t a, const char* b_name, size_t b) {
  if (a != b) fail("[{}] {} has {} elements but {} has {}", who, a_name, a, b_name, b);
  if (a == 0) fail("[{}] needs at least one element, got empty inputs", who);
}

void check_scores(const char* who, std::span<const double> scores) {
  for (size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i])) fail("[{}] scores[{}] is NaN", who, i);
  }
}

void check_binary(const char* who, const char* name, std::span<const int64_t> values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] != 0 && values[i] != 1) {
      fail("[{}] {} must be 0 or 1, got {}[{}] = {}", who, name, name, i, values[i]);
    }
  }
}

void check_classes(const char* who, const char* name, std::span<const int64_t> values,
                   int64_t num_classes) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] < 0 || values[i] >= num_classes) {
      fail("[{}] {}[{}] = {} is outside [0, {})", who, name, i, values[i], num_classes);
    }
  }
}

void check_num_classes(const char* who, int64_t num_classes) {
  if (num_classes < 1) fail("[{}] num_classes must be positive, got {}", who, num_classes);
}

// --- tensors to host vectors --------------------------------------------------------------------

void check_defined(const char* who, const char* name, const Tensor& t) {
  if (!t.defined()) fail("[{}] {} is an undefined tensor", who, name);
}

std::vector<double> values_of(const char* who, const char* name, const Tensor& t) {
  check_defined(who, name, t);
  return t.to_vector<double>();
}

/// The elements of `t` as int64, each of which must be a whole number (labels stored as floats).
std::vector<int64_t> classes_of(const char* who, const char* name, const Tensor& t) {
  const std::vector<double> v = values_of(who, name, t);
  std::vector<int64_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!(std::trunc(v[i]) == v[i] && std::abs(v[i]) < 9.2e18)) {
      fail("[{}] {} must hold whole numbers, got {}[{}] = {}", who, name, name, i, v[i]);
    }
    out[i] = static_cast<int64_t>(v[i]);
  }
  return out;
}

void check_same_shape(const char* who, const Tensor& a, const Tensor& b) {
  check_defined(who, "a", a);
  check_defined(who, "b", b);
  if (a.shape() != b.shape()) {
    fail("[{}] a and b must have the same shape, got {} and {}", who, shape_str(a.shape()),
         shape_str(b.shape()));
  }
}

/// The mask as 0/1 bytes broadcast to `shape` (non-zero selects).
std::vector<uint8_t> mask_of(const char* who, const Tensor& mask, const Shape& shape) {
  check_defined(who, "mask", mask);
  const Shape common = broadcast_shapes(mask.shape(), shape, who);
  if (common != shape) {
    fail("[{}] the mask of shape {} does not broadcast to the shape of a and b, {}", who,
         shape_str(mask.shape()), shape_str(shape));
  }
  const std::vector<double> v = broadcast_to(mask, shape).to_vector<double>();
  std::vector<uint8_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = v[i] != 0.0 ? 1 : 0;
  return out;
}

// --- counting -----------------------------------------------------------------------------------

/// tp, fp, fn of the positive class 1; predictions and labels checked binary.
struct BinaryCounts {
  int64_t tp = 0, fp = 0, fn = 0;
};

BinaryCounts binary_counts(const char* who, std::span<const int64_t> predicted,
                           std::span<const int64_t> labels) {
  check_lengths(who, "predicted", predicted.size(), "labels", labels.size());
  check_binary(who, "predicted", predicted);
  check_binary(who, "labels", labels);
  BinaryCounts c;
  for (size_t i = 0; i < labels.size(); ++i) {
    c.tp += predicted[i] & labels[i];
    c.fp += predicted[i] & (1 - labels[i]);
    c.fn += (1 - predicted[i]) & labels[i];
  }
  return c;
}

/// a / b as a double, 0 when b is 0 (sklearn's zero_division=0).
double ratio(int64_t a, int64_t b) {
  return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
}

/// One distinct score and the counts of labels 1 (tp) and 0 (fp) at or above it.
struct Threshold {
  double score;
  int64_t tp, fp;
};

/// The distinct scores from the highest down, with cumulative counts: the points of sklearn's
/// _binary_clf_curve. Checks lengths, NaN scores and binary labels.
std::vector<Threshold> descending_thresholds(const char* who, std::span<const double> scores,
                                             std::span<const int64_t> labels) {
  check_lengths(who, "scores", scores.size(), "labels", labels.size());
  check_scores(who, scores);
  check_binary(who, "labels", labels);
  std::vector<std::pair<double, int64_t>> sorted(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) sorted[i] = {scores[i], labels[i]};
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& x, const auto& y) { return x.first > y.first; });
  std::vector<Threshold> out;
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    tp += sorted[i].second;
    fp += 1 - sorted[i].second;
    if (i + 1 == sorted.size() || sorted[i + 1].first != sorted[i].first) {
      out.push_back({sorted[i].first, tp, fp});
    }
  }
  return out;
}

/// Fails unless both classes occur (the last threshold holds the totals).
void check_both_classes(const char* who, const std::vector<Threshold>& t) {
  const int64_t positives = t.back().tp, negatives = t.back().fp;
  if (positives == 0 || negatives == 0) {
    fail("[{}] needs both classes in labels, but every label is {}", who, positives == 0 ? 0 : 1);
  }
}

/// mean((a - b)^2) over every element, or, given a mask, over those where it is non-zero.
double mean_squared(const char* who, std::span<const double> a, std::span<const double> b,
                    const std::span<const uint8_t>* mask = nullptr) {
  check_lengths(who, "a", a.size(), "b", b.size());
  if (mask) check_lengths(who, "a", a.size(), "mask", mask->size());
  double sum = 0.0;
  int64_t count = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (mask && (*mask)[i] == 0) continue;
    const double d = a[i] - b[i];
    sum += d * d;
    ++count;
  }
  if (count == 0) fail("[{}] the mask selects no element", who);
  return sum / static_cast<double>(count);
}

/// 10 log10(max_value^2 / mse_value), +inf for a zero error; checks max_value.
double psnr_of(const char* who, double mse_value, double max_value) {
  if (!(max_value > 0.0) || std::isinf(max_value)) {
    fail("[{}] max_value must be positive and finite, got {}", who, max_value);
  }
  if (mse_value == 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(max_value * max_value / mse_value);
}

}  // namespace

// --- predicted classes --------------------------------------------------------------------------

double accuracy(std::span<const int64_t> predicted, std::span<const int64_t> labels) {
  check_lengths("accuracy", "predicted", predicted.size(), "labels", labels.size());
  int64_t hits = 0;
  for (size_t i = 0; i < labels.size(); ++i) hits += predicted[i] == labels[i];
  return static_cast<double>(hits) / static_cast<double>(labels.size());
}

double accuracy(const Tensor& predicted, const Tensor& labels) {
  return accuracy(classes_of("accuracy", "predicted", predicted),
                  classes_of("accuracy", "labels", labels));
}

double accuracy_from_logits(const Tensor& logits, const Tensor& labels) {
  const char* who = "accuracy_from_logits";
  check_defined(who, "logits", logits);
  check_defined(who, "labels", labels);
  if (logits.ndim() != 2) {
    fail("[{}] logits must have shape (N, C), got {}", who, shape_str(logits.shape()));
  }
  const int64_t n = logits.shape(0), c = logits.shape(1);
  if (labels.ndim() != 1 || labels.shape(0) != n) {
    fail("[{}] labels must have shape ({}) to match logits {}, got {}", who, n,
         shape_str(logits.shape()), shape_str(labels.shape()));
  }
  if (n == 0 || c == 0)
    fail("[{}] needs at least one row and one class, got logits {}", who,
         shape_str(logits.shape()));
  const std::vector<double> x = logits.to_vector<double>();
  const std::vector<int64_t> y = classes_of(who, "labels", labels);
  check_classes(who, "labels", y, c);
  int64_t hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double* row = x.data() + i * c;
    int64_t best = 0;
    for (int64_t j = 0; j < c; ++j) {
      if (std::isnan(row[j])) fail("[{}] logits[{}, {}] is NaN", who, i, j);
      if (row[j] > row[best]) best = j;
    }
    hits += best == y[static_cast<size_t>(i)];
  }
  return static_cast<double>(hits) / static_cast<double>(n);
}

Tensor confusion_matrix(std::span<const int64_t> predicted, std::span<const int64_t> labels,
                        int64_t num_classes) {
  const char* who = "confusion_matrix";
  check_num_classes(who, num_classes);
  check_lengths(who, "predicted", predicted.size(), "labels", labels.size());
  check_classes(who, "predicted", predicted, num_classes);
  check_classes(who, "labels", labels, num_classes);
  std::vector<int64_t> counts(static_cast<size_t>(num_classes * num_classes), 0);
  for (size_t i = 0; i < labels.size(); ++i) ++counts[labels[i] * num_classes + predicted[i]];
  return from_vector(counts, {num_classes, num_classes});
}

Tensor confusion_matrix(const Tensor& predicted, const Tensor& labels, int64_t num_classes) {
  return confusion_matrix(classes_of("confusion_matrix", "predicted", predicted),
                          classes_of("confusion_matrix", "labels", labels), num_classes);
}

double precision(std::span<const int64_t> predicted, std::span<const int64_t> labels) {
  const BinaryCounts c = binary_counts("precision", predicted, labels);
  return ratio(c.tp, c.tp + c.fp);
}

double precision(const Tensor& predicted, const Tensor& labels) {
  return precision(classes_of("precision", "predicted", predicted),
                   classes_of("precision", "labels", labels));
}

double recall(std::span<const int64_t> predicted, std::span<const int64_t> labels) {
  const BinaryCounts c = binary_counts("recall", predicted, labels);
  return ratio(c.tp, c.tp + c.fn);
}

double recall(const Tensor& predicted, const Tensor& labels) {
  return recall(classes_of("recall", "predicted", predicted),
                classes_of("recall", "labels", labels));
}

double f1(std::span<const int64_t> predicted, std::span<const int64_t> labels) {
  const BinaryCounts c = binary_counts("f1", predicted, labels);
  return ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn);
}

double f1(const Tensor& predicted, const Tensor& labels) {
  return f1(classes_of("f1", "predicted", predicted), classes_of("f1", "labels", labels));
}

double macro_f1(std::span<const int64_t> predicted, std::span<const int64_t> labels,
                int64_t num_classes) {
  const char* who = "macro_f1";
  check_num_classes(who, num_classes);
  check_lengths(who, "predicted", predicted.size(), "labels", labels.size());
  check_classes(who, "predicted", predicted, num_classes);
  check_classes(who, "labels", labels, num_classes);
  const auto c = static_cast<size_t>(num_classes);
  std::vector<int64_t> tp(c, 0), support(c, 0);  // support: predicted_c + true_c
  for (size_t i = 0; i < labels.size(); ++i) {
    tp[labels[i]] += predicted[i] == labels[i];
    ++support[labels[i]];
    ++support[predicted[i]];
  }
  double sum = 0.0;
  int64_t present = 0;
  for (size_t k = 0; k < c; ++k) {
    if (support[k] == 0) continue;
    sum += ratio(2 * tp[k], support[k]);
    ++present;
  }
  return sum / static_cast<double>(present);
}

double macro_f1(const Tensor& predicted, const Tensor& labels, int64_t num_classes) {
  return macro_f1(classes_of("macro_f1", "predicted", predicted),
                  classes_of("macro_f1", "labels", labels), num_classes);
}

// --- scores against binary labels ---------------------------------------------------------------

double roc_auc(std::span<const double> scores, std::span<const int64_t> labels) {
  const auto t = descending_thresholds("roc_auc", scores, labels);
  check_both_classes("roc_auc", t);
  // Twice the area in units of 1 / (P N): a step of fp negatives at tp_prev..tp positives adds the
  // trapezoid fp * (tp_prev + tp) (exact in int64 for n up to 4e9).
  int64_t twice_area = 0, tp_prev = 0, fp_prev = 0;
  for (const Threshold& p : t) {
    twice_area += (p.fp - fp_prev) * (tp_prev + p.tp);
    tp_prev = p.tp;
    fp_prev = p.fp;
  }
  return static_cast<double>(twice_area) / (2.0 * static_cast<double>(tp_prev * fp_prev));
}

double roc_auc(const Tensor& scores, const Tensor& labels) {
  return roc_auc(values_of("roc_auc", "scores", scores), classes_of("roc_auc", "labels", labels));
}

double average_precision(std::span<const double> scores, std::span<const int64_t> labels) {
  const auto t = descending_thresholds("average_precision", scores, labels);
  const int64_t positives = t.back().tp;
  if (positives == 0) fail("[average_precision] needs at least one positive label, got none");
  double sum = 0.0;
  int64_t tp_prev = 0;
  for (const Threshold& p : t) {
    sum += static_cast<double>(p.tp - tp_prev) * ratio(p.tp, p.tp + p.fp);
    tp_prev = p.tp;
  }
  return sum / static_cast<double>(positives);
}

double average_precision(const Tensor& scores, const Tensor& labels) {
  return average_precision(values_of("average_precision", "scores", scores),
                           classes_of("average_precision", "labels", labels));
}

ThresholdF1 best_macro_f1(std::span<const double> scores, std::span<const int64_t> labels) {
  const auto t = descending_thresholds("best_macro_f1", scores, labels);
  check_both_classes("best_macro_f1", t);
  const int64_t positives = t.back().tp, negatives = t.back().fp;
  ThresholdF1 best{0.0, -1.0};
  for (const Threshold& p : t) {
    // F1_1 = 2 tp / b and F1_0 = 2 tn / a, so their mean is (tn b + tp a) / (a b): one division of
    // exact integers, so equal fractions give equal doubles and ties are found exactly.
    const int64_t fn = positives - p.tp, tn = negatives - p.fp;
    const int64_t a = 2 * tn + p.fp + fn, b = 2 * p.tp + p.fp + fn;
    const double value = static_cast<double>(tn * b + p.tp * a) / static_cast<double>(a * b);
    if (value >= best.macro_f1) best = {p.score, value};  // descending: '>=' keeps the smallest
  }
  return best;
}

ThresholdF1 best_macro_f1(const Tensor& scores, const Tensor& labels) {
  return best_macro_f1(values_of("best_macro_f1", "scores", scores),
                       classes_of("best_macro_f1", "labels", labels));
}

// --- reconstructions ----------------------------------------------------------------------------

double mse(std::span<const double> a, std::span<const double> b) {
  return mean_squared("mse", a, b);
}

double mse(const Tensor& a, const Tensor& b) {
  check_same_shape("mse", a, b);
  return mse(a.to_vector<double>(), b.to_vector<double>());
}

double psnr(std::span<const double> a, std::span<const double> b, double max_value) {
  return psnr_of("psnr", mean_squared("psnr", a, b), max_value);
}

double psnr(const Tensor& a, const Tensor& b, double max_value) {
  check_same_shape("psnr", a, b);
  return psnr(a.to_vector<double>(), b.to_vector<double>(), max_value);
}

double masked_mse(std::span<const double> a, std::span<const double> b,
                  std::span<const uint8_t> mask) {
  return mean_squared("masked_mse", a, b, &mask);
}

double masked_mse(const Tensor& a, const Tensor& b, const Tensor& mask) {
  check_same_shape("masked_mse", a, b);
  return masked_mse(a.to_vector<double>(), b.to_vector<double>(),
                    mask_of("masked_mse", mask, a.shape()));
}

double masked_psnr(std::span<const double> a, std::span<const double> b,
                   std::span<const uint8_t> mask, double max_value) {
  return psnr_of("masked_psnr", mean_squared("masked_psnr", a, b, &mask), max_value);
}

double masked_psnr(const Tensor& a, const Tensor& b, const Tensor& mask, double max_value) {
  check_same_shape("masked_psnr", a, b);
  return masked_psnr(a.to_vector<double>(), b.to_vector<double>(),
                     mask_of("masked_psnr", mask, a.shape()), max_value);
}

}  // namespace basin::data
