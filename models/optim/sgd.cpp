// SGD update: torch.optim.SGD's algorithm with tensor ops, so it runs on any device.
#include "models/optim/sgd.h"

#include <cmath>
#include <utility>

#include "core/error.h"
#include "core/ops.h"

namespace basin::optim {

SGD::SGD(Tensors params, double lr, SgdOptions options)
    : Optimizer(std::move(params), lr, "SGD"), options_(options) {
  if (!(options_.momentum >= 0.0)) fail("[SGD] invalid momentum {}", options_.momentum);
  if (!(options_.weight_decay >= 0.0)) fail("[SGD] invalid weight_decay {}", options_.weight_decay);
  if (!std::isfinite(options_.dampening)) fail("[SGD] invalid dampening {}", options_.dampening);
  if (options_.nesterov && (options_.momentum <= 0.0 || options_.dampening != 0.0)) {
    fail("[SGD] Nesterov momentum requires a momentum and zero dampening");
  }
}

void SGD::update(size_t index, const Tensor& param, const Tensor& grad) {
  const SgdOptions& o = options_;
  Tensor d = grad;
  if (o.weight_decay != 0.0) d = d + o.weight_decay * param;
  if (o.momentum != 0.0) {
    Tensor buf = buffer(index, "momentum_buffer");
    if (!buf.defined()) {
      // PyTorch seeds the buffer with the first (decayed) gradient, undamped.
      buf = d.clone();
      set_buffer(index, "momentum_buffer", buf);
    } else {
      buf.assign(o.momentum * buf + (1.0 - o.dampening) * d);
    }
    d = o.nesterov ? d + o.momentum * buf : buf;
  }
  param.assign(param - lr() * d);
}

}  // namespace basin::optim
