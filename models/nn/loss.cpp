// Losses as compositions of public ops (so they are twice differentiable), with the argument
// checks that turn a wrong shape or dtype into an error naming the loss.
#include "models/nn/loss.h"

#include <vector>

#include "core/error.h"
#include "core/ops.h"

namespace basin::nn {
namespace {

Tensor reduce(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::mean:
      return mean(loss);
    case Reduction::sum:
      return sum(loss);
    case Reduction::none:
      return loss;
  }
  fail("[loss] unknown reduction {}", static_cast<int>(reduction));
}

void check_floating(const Tensor& t, const char* who, const char* what) {
  if (!t.defined()) fail("[{}] {} is undefined", who, what);
  if (!is_floating(t.dtype())) {
    fail("[{}] {} must be floating (float32 or float64), got {}", who, what, dtype_name(t.dtype()));
  }
}

/// pred and target: defined, floating, the same shape.
void check_pair(const Tensor& pred, const Tensor& target, const char* who, const char* pred_name) {
  check_floating(pred, who, pred_name);
  check_floating(target, who, "target");
  if (pred.shape() != target.shape()) {
    fail("[{}] {} of shape {} and target of shape {} differ", who, pred_name,
         shape_str(pred.shape()), shape_str(target.shape()));
  }
}

/// `t` broadcasts to `shape` without changing it.
void check_broadcasts(const Tensor& t, const Shape& shape, const char* who, const char* what) {
  const Shape& from = t.shape();
  bool ok = from.size() <= shape.size();
  for (size_t i = 1; ok && i <= from.size(); ++i) {
    const int64_t d = from[from.size() - i];
    ok = d == 1 || d == shape[shape.size() - i];
  }
  if (!ok) {
    fail("[{}] {} of shape {} does not broadcast to {}", who, what, shape_str(t.shape()),
         shape_str(shape));
  }
}

}  // namespace

Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction) {
  check_pair(pred, target, "mse_loss", "pred");
  const Tensor d = pred - target;
  return reduce(d * d, reduction);
}

Tensor masked_mse_loss(const Tensor& pred, const Tensor& target, const Tensor& mask) {
  check_pair(pred, target, "masked_mse_loss", "pred");
  if (!mask.defined()) fail("[masked_mse_loss] mask is undefined");
  check_broadcasts(mask, pred.shape(), "masked_mse_loss", "mask");
  const Tensor selected =
      broadcast_to(mask.dtype() == Dtype::boolean ? mask : mask != 0.0, pred.shape());
  const Tensor d = pred - target;
  // where() rather than a product with the mask: unselected elements never reach the sum, even
  // when they hold inf or NaN.
  const Tensor total = sum(where(selected, d * d, 0.0));
  const Tensor count = sum(selected).astype(total.dtype());
  return total / maximum(count, scalar(1.0, total.dtype(), total.device()));
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& target, const Tensor& pos_weight,
                       Reduction reduction) {
  check_pair(logits, target, "bce_with_logits", "logits");
  // softplus(-x) = log(1 + exp(-x)) = -log(sigmoid(x)), evaluated without overflow.
  const Tensor neg_log_sigmoid = softplus(-logits);
  Tensor loss;
  if (pos_weight.defined()) {
    check_floating(pos_weight, "bce_with_logits", "pos_weight");
    check_broadcasts(pos_weight, logits.shape(), "bce_with_logits", "pos_weight");
    loss = (1.0 - target) * logits + (1.0 + (pos_weight - 1.0) * target) * neg_log_sigmoid;
  } else {
    loss = (1.0 - target) * logits + neg_log_sigmoid;
  }
  return reduce(loss, reduction);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight,
                     double label_smoothing, int64_t ignore_index, Reduction reduction) {
  check_floating(logits, "cross_entropy", "logits");
  if (!target.defined()) fail("[cross_entropy] target is undefined");
  if (target.dtype() != Dtype::i64 && target.dtype() != Dtype::i32) {
    fail("[cross_entropy] target must hold class indices (int32 or int64), got {}",
         dtype_name(target.dtype()));
  }
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0)) {
    fail("[cross_entropy] label_smoothing must be in [0, 1], got {}", label_smoothing);
  }
  if (logits.ndim() == 0) fail("[cross_entropy] logits must have a class dimension, got shape ()");
  // The class dimension is 0 for one sample (C) and 1 otherwise; the target has the logits'
  // shape without it.
  const int class_axis = logits.ndim() == 1 ? 0 : 1;
  const int64_t classes = logits.shape(class_axis);
  Shape want = logits.shape();
  want.erase(want.begin() + class_axis);
  if (target.shape() != want) {
    fail("[cross_entropy] target of shape {} does not fit logits of shape {} (expected {})",
         shape_str(target.shape()), shape_str(logits.shape()), shape_str(want));
  }
  if (weight.defined()) {
    check_floating(weight, "cross_entropy", "weight");
    if (weight.shape() != Shape{classes}) {
      fail("[cross_entropy] weight of shape {} must have one entry per class ({})",
           shape_str(weight.shape()), classes);
    }
  }

  // Flatten to rows of classes: (M, C) log-probabilities and (M) targets.
  const Tensor rows = reshape(movedim(logits, class_axis, -1), {-1, classes});
  const Tensor log_p = log_softmax(rows, -1);  // (M, C)
  const int64_t m = rows.shape(0);

  // Targets are checked on the host; ignored ones index class 0 and are masked out below.
  const auto values = target.to_vector<int64_t>();
  std::vector<int64_t> safe(values.size());
  std::vector<uint8_t> keep(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const int64_t v = values[i];
    keep[i] = v != ignore_index;
    if (keep[i] && (v < 0 || v >= classes)) {
      fail("[cross_entropy] target {} is out of range for {} classes (ignore_index is {})", v,
           classes, ignore_index);
    }
    safe[i] = keep[i] ? v : 0;
  }
  const Tensor index = from_vector(safe, {m}, logits.device());
  const Tensor kept = from_vector(keep, {m}, logits.device()).astype(Dtype::boolean);

  const Tensor picked = squeeze(gather(log_p, 1, unsqueeze(index, 1)), {1});  // (M)
  const Tensor w = where(kept,
                         weight.defined() ? index_select(weight, 0, index)
                                          : ones({m}, logits.dtype(), logits.device()),
                         0.0);  // (M): the weight of each sample's target, 0 when ignored
  const Tensor nll = where(kept, -(w * picked), 0.0);
  // The mean divides by the summed target weights: the number of kept samples without a weight.
  auto reduce_rows = [&](const Tensor& per_row) {
    switch (reduction) {
      case Reduction::mean:
        return sum(per_row) / sum(w);
      case Reduction::sum:
        return sum(per_row);
      case Reduction::none:
        return reshape(per_row, target.shape());
    }
    fail("[cross_entropy] unknown reduction {}", static_cast<int>(reduction));
  };
  const Tensor loss = reduce_rows(nll);
  if (label_smoothing == 0.0) return loss;

  const Tensor smooth =
      where(kept, -sum(weight.defined() ? log_p * weight : log_p, {-1}), 0.0);  // (M)
  return (1.0 - label_smoothing) * loss +
         (label_smoothing / static_cast<double>(classes)) * reduce_rows(smooth);
}

}  // namespace basin::nn
