// Dropout, composed of bernoulli and a multiplication: its derivatives come from mul's.
#include "core/ops/dropout.h"

#include "core/ops/elementwise.h"

namespace basin {

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  if (!x.defined()) fail("[dropout] got an undefined tensor");
  if (!(p >= 0.0 && p <= 1.0)) fail("[dropout] probability must be in [0, 1], got {}", p);
  if (!is_floating(x.dtype())) {
    fail("[dropout] needs a floating dtype (float32 or float64), got {}", dtype_name(x.dtype()));
  }
  if (!training || p == 0.0) return x;
  if (p == 1.0) return x * 0.0;
  const Tensor keep = bernoulli(x.shape(), 1.0 - p, x.device(), gen);
  // The mask is scaled before it meets x, so the graph holds a single multiplication.
  return x * (keep.astype(x.dtype()) * (1.0 / (1.0 - p)));
}

}  // namespace basin
