// Evaluation metrics computed on the host: accuracy, confusion matrix, precision/recall/F1,
// ROC-AUC, average precision, a macro-F1 threshold sweep and (masked) MSE/PSNR, each as
// scikit-learn has it.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace basin::data {

// Conventions shared by every metric below:
// - Inputs must be non-empty and of equal length; anything else is a basin::Error whose message
//   starts with the metric's name in brackets ("[roc_auc] ...").
// - Scores (for ranking metrics) must not be NaN; infinities are allowed.
// - Binary metrics need labels (and predictions) in {0, 1}; the positive class is 1.
// - Each Tensor overload reads its tensors in row-major order (any real dtype, any device, copied
//   to the host) and checks element counts, not shapes, unless it says otherwise. A tensor of
//   labels may have any dtype, but its values must be whole numbers.

// --- predicted classes --------------------------------------------------------------------------

/// Fraction of positions where `predicted` equals `labels` (sklearn's accuracy_score).
double accuracy(std::span<const int64_t> predicted, std::span<const int64_t> labels);
double accuracy(const Tensor& predicted, const Tensor& labels);
/// Accuracy of the row-wise argmax of `logits` (N, C) against `labels` (N) with values in [0, C);
/// the first maximum wins a tie (as numpy.argmax). NaN logits are an error.
double accuracy_from_logits(const Tensor& logits, const Tensor& labels);

/// Counts (C, C) int64 with C = num_classes: entry (i, j) is the number of samples of true class i
/// predicted as class j (sklearn's layout). Every prediction and label must lie in [0, C).
Tensor confusion_matrix(std::span<const int64_t> predicted, std::span<const int64_t> labels,
                        int64_t num_classes);
Tensor confusion_matrix(const Tensor& predicted, const Tensor& labels, int64_t num_classes);

/// Binary precision tp / (tp + fp); 0 when nothing is predicted positive (sklearn's
/// zero_division default, without the warning).
double precision(std::span<const int64_t> predicted, std::span<const int64_t> labels);
double precision(const Tensor& predicted, const Tensor& labels);
/// Binary recall tp / (tp + fn); 0 when no label is positive.
double recall(std::span<const int64_t> predicted, std::span<const int64_t> labels);
double recall(const Tensor& predicted, const Tensor& labels);
/// Binary F1 = 2 tp / (2 tp + fp + fn) of the positive class; 0 when no prediction and no label is
/// positive.
double f1(std::span<const int64_t> predicted, std::span<const int64_t> labels);
double f1(const Tensor& predicted, const Tensor& labels);
/// Mean over classes of the per-class F1 2 tp_c / (predicted_c + true_c), as sklearn's
/// f1_score(average="macro"): a class in [0, num_classes) that appears neither among the
/// predictions nor among the labels is left out of the mean; a class that appears on one side only
/// counts with F1 = 0. Every prediction and label must lie in [0, num_classes).
double macro_f1(std::span<const int64_t> predicted, std::span<const int64_t> labels,
                int64_t num_classes);
double macro_f1(const Tensor& predicted, const Tensor& labels, int64_t num_classes);

// --- scores against binary labels ---------------------------------------------------------------

/// Area under the ROC curve, equal to sklearn's roc_auc_score for binary labels: equal scores form
/// one threshold, so a tie between a positive and a negative counts one half (the trapezoid rule).
/// Both classes must be present. Computed from exact integer counts after one sort, O(n log n).
double roc_auc(std::span<const double> scores, std::span<const int64_t> labels);
double roc_auc(const Tensor& scores, const Tensor& labels);

/// Average precision, sklearn's average_precision_score: sum over the distinct scores t, from the
/// highest down, of (R(t) - R(t_prev)) * P(t), with precision P and recall R of "score >= t".
/// Needs at least one positive label (sklearn warns and returns 0 there; this is an error).
double average_precision(std::span<const double> scores, std::span<const int64_t> labels);
double average_precision(const Tensor& scores, const Tensor& labels);

/// The outcome of best_macro_f1.
struct ThresholdF1 {
  /// Predict class 1 when score >= threshold.
  double threshold;
  /// Binary macro-F1 (mean of the F1 of class 0 and of class 1) at that threshold.
  double macro_f1;
};

/// Sweeps every distinct score as the threshold (predict 1 when score >= threshold) and returns the
/// one with the highest binary macro-F1, the validation-tuned threshold of graph anomaly detection.
/// Of thresholds whose macro-F1 is exactly equal, the smallest wins. Both classes must be present.
/// O(n log n): one sort, then cumulative counts. Each value is formed from exact integer counts
/// with one division, so mathematically equal macro-F1s compare equal (for n up to about 9e7).
ThresholdF1 best_macro_f1(std::span<const double> scores, std::span<const int64_t> labels);
ThresholdF1 best_macro_f1(const Tensor& scores, const Tensor& labels);

// --- reconstructions ----------------------------------------------------------------------------

/// Mean squared error mean((a - b)^2). A NaN in a or b gives NaN (no error). The Tensor overload
/// needs equal shapes.
double mse(std::span<const double> a, std::span<const double> b);
double mse(const Tensor& a, const Tensor& b);
/// Peak signal-to-noise ratio 10 log10(max_value^2 / mse(a, b)) in dB; +inf when a == b.
/// max_value (the data range: 1 for images in [0, 1], 255 for bytes) must be positive and finite.
double psnr(std::span<const double> a, std::span<const double> b, double max_value = 1.0);
double psnr(const Tensor& a, const Tensor& b, double max_value = 1.0);

/// MSE over the elements where `mask` is non-zero (the masked patches of image completion). The
/// mask must select at least one element. In the Tensor overload, a and b need equal shapes and
/// the mask (any dtype) must broadcast to that shape, e.g. (B, N, 1) against patches (B, N, P).
double masked_mse(std::span<const double> a, std::span<const double> b,
                  std::span<const uint8_t> mask);
double masked_mse(const Tensor& a, const Tensor& b, const Tensor& mask);
/// PSNR of masked_mse; +inf when the selected elements are equal.
double masked_psnr(std::span<const double> a, std::span<const double> b,
                   std::span<const uint8_t> mask, double max_value = 1.0);
double masked_psnr(const Tensor& a, const Tensor& b, const Tensor& mask, double max_value = 1.0);

}  // namespace basin::data
