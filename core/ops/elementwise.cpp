// Elementwise ops: argument checks, dtype promotion and each op's vector-Jacobian product.
#include "core/ops/elementwise.h"

#include <cmath>

#include "core/ops/creation.h"
#include "core/prims/elementwise.h"

namespace basin {
namespace {
using namespace prims;

template <class OpT, class... Args>
Tensor unary(const char* name, const Tensor& x, bool floating_only, Args... args) {
  if (!x.defined()) fail("[{}] got an undefined tensor", name);
  if (floating_only && !is_floating(x.dtype())) {
    fail("[{}] needs a floating dtype (float32 or float64), got {}", name, dtype_name(x.dtype()));
  }
  if (!floating_only && x.dtype() == Dtype::boolean) fail("[{}] does not take bool tensors", name);
  return apply(std::make_shared<OpT>(args...), {x}, x.shape(), x.dtype());
}

enum class Kind { arithmetic, floating, comparison, logical };

template <class OpT>
Tensor binary(const char* name, const Tensor& a, const Tensor& b, Kind kind) {
  if (!a.defined() || !b.defined()) fail("[{}] got an undefined tensor", name);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Dtype common = promote_types(a.dtype(), b.dtype());
  if (kind == Kind::logical) {
    if (a.dtype() != Dtype::boolean || b.dtype() != Dtype::boolean) {
      fail("[{}] needs bool tensors, got {} and {}", name, dtype_name(a.dtype()),
           dtype_name(b.dtype()));
    }
  } else if (kind == Kind::floating && !is_floating(common)) {
    fail("[{}] needs floating tensors, got {} and {}", name, dtype_name(a.dtype()),
         dtype_name(b.dtype()));
  } else if (kind == Kind::arithmetic && common == Dtype::boolean) {
    fail("[{}] does not take bool tensors", name);
  }
  const Tensor ca = a.astype(common);
  const Tensor cb = b.astype(common);
  const Dtype out = kind == Kind::comparison || kind == Kind::logical ? Dtype::boolean : common;
  return apply(std::make_shared<OpT>(), {ca, cb}, shape, out);
}

Tensor like(const Tensor& t, double v) { return scalar(v, t.dtype(), t.device()); }
Tensor mask_of(const Tensor& cond, const Tensor& like_t) { return cond.astype(like_t.dtype()); }

}  // namespace

// --- public functions ----------------------------------------------------------------------------
Tensor neg(const Tensor& x) { return unary<Neg>("neg", x, false); }
Tensor abs(const Tensor& x) { return unary<Abs>("abs", x, false); }
Tensor sign(const Tensor& x) { return unary<Sign>("sign", x, false); }
Tensor exp(const Tensor& x) { return unary<Exp>("exp", x, true); }
Tensor log(const Tensor& x) { return unary<Log>("log", x, true); }
Tensor log1p(const Tensor& x) { return unary<Log1p>("log1p", x, true); }
Tensor expm1(const Tensor& x) { return unary<Expm1>("expm1", x, true); }
Tensor sqrt(const Tensor& x) { return unary<Sqrt>("sqrt", x, true); }
Tensor rsqrt(const Tensor& x) { return unary<Rsqrt>("rsqrt", x, true); }
Tensor square(const Tensor& x) { return unary<Square>("square", x, false); }
Tensor sin(const Tensor& x) { return unary<Sin>("sin", x, true); }
Tensor cos(const Tensor& x) { return unary<Cos>("cos", x, true); }
Tensor tanh(const Tensor& x) { return unary<Tanh>("tanh", x, true); }
Tensor sigmoid(const Tensor& x) { return unary<Sigmoid>("sigmoid", x, true); }
Tensor relu(const Tensor& x) { return unary<Relu>("relu", x, false); }
Tensor erf(const Tensor& x) { return unary<Erf>("erf", x, true); }
Tensor softplus(const Tensor& x) { return unary<Softplus>("softplus", x, true); }
Tensor elu(const Tensor& x, double alpha) { return unary<Elu>("elu", x, true, alpha); }
Tensor pow(const Tensor& x, double p) { return unary<PowScalar>("pow", x, true, p); }

Tensor gelu(const Tensor& x, bool tanh_approximation) {
  if (tanh_approximation) {
    const double k = std::sqrt(2.0 / M_PI);
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
  }
  return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
}

Tensor silu(const Tensor& x) { return x * sigmoid(x); }

Tensor selu(const Tensor& x) {
  constexpr double alpha = 1.6732632423543772848170429916717;
  constexpr double scale = 1.0507009873554804934193349852946;
  return scale * elu(x, alpha);
}

Tensor add(const Tensor& a, const Tensor& b) { return binary<Add>("add", a, b, Kind::arithmetic); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary<Sub>("sub", a, b, Kind::arithmetic); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary<Mul>("mul", a, b, Kind::arithmetic); }
Tensor div(const Tensor& a, const Tensor& b) { return binary<Div>("div", a, b, Kind::arithmetic); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary<Pow>("pow", a, b, Kind::floating); }
Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary<Maximum>("maximum", a, b, Kind::arithmetic);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary<Minimum>("minimum", a, b, Kind::arithmetic);
}
Tensor atan2(const Tensor& y, const Tensor& x) {
  return binary<Atan2>("atan2", y, x, Kind::floating);
}
Tensor equal(const Tensor& a, const Tensor& b) {
  return binary<Equal>("equal", a, b, Kind::comparison);
}
Tensor not_equal(const Tensor& a, const Tensor& b) {
  return binary<NotEqual>("not_equal", a, b, Kind::comparison);
}
Tensor less(const Tensor& a, const Tensor& b) {
  return binary<Less>("less", a, b, Kind::comparison);
}
Tensor less_equal(const Tensor& a, const Tensor& b) {
  return binary<LessEqual>("less_equal", a, b, Kind::comparison);
}
Tensor greater(const Tensor& a, const Tensor& b) {
  return binary<Greater>("greater", a, b, Kind::comparison);
}
Tensor greater_equal(const Tensor& a, const Tensor& b) {
  return binary<GreaterEqual>("greater_equal", a, b, Kind::comparison);
}
Tensor logical_and(const Tensor& a, const Tensor& b) {
  return binary<LogicalAnd>("logical_and", a, b, Kind::logical);
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  return binary<LogicalOr>("logical_or", a, b, Kind::logical);
}
Tensor logical_xor(const Tensor& a, const Tensor& b) {
  return binary<LogicalXor>("logical_xor", a, b, Kind::logical);
}
Tensor logical_not(const Tensor& a) {
  if (a.dtype() != Dtype::boolean)
    fail("[logical_not] needs a bool tensor, got {}", dtype_name(a.dtype()));
  return apply(std::make_shared<LogicalNot>(), {a}, a.shape(), Dtype::boolean);
}
Tensor isnan(const Tensor& x) { return not_equal(x, x); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  if (!cond.defined() || !a.defined() || !b.defined()) fail("[where] got an undefined tensor");
  if (cond.dtype() != Dtype::boolean) {
    fail("[where] condition must be a bool tensor, got {}", dtype_name(cond.dtype()));
  }
  const Shape shape =
      broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  const Dtype common = promote_types(a.dtype(), b.dtype());
  return apply(std::make_shared<Where>(), {cond, a.astype(common), b.astype(common)}, shape,
               common);
}
Tensor where(const Tensor& cond, const Tensor& a, double b) { return where(cond, a, like(a, b)); }
Tensor where(const Tensor& cond, double a, const Tensor& b) { return where(cond, like(b, a), b); }

Tensor clamp(const Tensor& x, double lo, double hi) {
  if (lo > hi) fail("[clamp] lower bound {} is above upper bound {}", lo, hi);
  return minimum(maximum(x, like(x, lo)), like(x, hi));
}

Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, like(a, b)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, like(a, b)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, like(a, b)); }
Tensor operator/(const Tensor& a, double b) { return div(a, like(a, b)); }
Tensor operator+(double a, const Tensor& b) { return add(like(b, a), b); }
Tensor operator-(double a, const Tensor& b) { return sub(like(b, a), b); }
Tensor operator*(double a, const Tensor& b) { return mul(like(b, a), b); }
Tensor operator/(double a, const Tensor& b) { return div(like(b, a), b); }
Tensor operator==(const Tensor& a, const Tensor& b) { return equal(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return not_equal(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return less(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return less_equal(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return greater(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return greater_equal(a, b); }
Tensor operator==(const Tensor& a, double b) { return equal(a, like(a, b)); }
Tensor operator!=(const Tensor& a, double b) { return not_equal(a, like(a, b)); }
Tensor operator<(const Tensor& a, double b) { return less(a, like(a, b)); }
Tensor operator<=(const Tensor& a, double b) { return less_equal(a, like(a, b)); }
Tensor operator>(const Tensor& a, double b) { return greater(a, like(a, b)); }
Tensor operator>=(const Tensor& a, double b) { return greater_equal(a, like(a, b)); }
Tensor operator&&(const Tensor& a, const Tensor& b) { return logical_and(a, b); }
Tensor operator||(const Tensor& a, const Tensor& b) { return logical_or(a, b); }
Tensor operator!(const Tensor& a) { return logical_not(a); }

// --- vector-Jacobian products --------------------------------------------------------------------
namespace prims {

#define BASIN_VJP(Name)                                                                     \
  Tensors Name::vjp([[maybe_unused]] const Tensors& in, [[maybe_unused]] const Tensor& out, \
                    [[maybe_unused]] const Tensor& cot,                                     \
                    [[maybe_unused]] const std::vector<int>& argnums)

BASIN_VJP(Neg) { return {-cot}; }
BASIN_VJP(Abs) { return {cot * sign(in[0])}; }
BASIN_VJP(Sign) { return {zeros_like(in[0])}; }
BASIN_VJP(Exp) { return {cot * out}; }
BASIN_VJP(Log) { return {cot / in[0]}; }
BASIN_VJP(Log1p) { return {cot / (in[0] + 1.0)}; }
BASIN_VJP(Expm1) { return {cot * (out + 1.0)}; }
BASIN_VJP(Sqrt) { return {cot * 0.5 / out}; }
BASIN_VJP(Rsqrt) { return {cot * -0.5 * out / in[0]}; }
BASIN_VJP(Square) { return {cot * 2.0 * in[0]}; }
BASIN_VJP(Sin) { return {cot * cos(in[0])}; }
BASIN_VJP(Cos) { return {-cot * sin(in[0])}; }
BASIN_VJP(Tanh) { return {cot * (1.0 - out * out)}; }
BASIN_VJP(Sigmoid) { return {cot * out * (1.0 - out)}; }
BASIN_VJP(Relu) { return {cot * mask_of(in[0] > 0.0, cot)}; }
BASIN_VJP(Erf) { return {cot * (2.0 / std::sqrt(M_PI)) * exp(-in[0] * in[0])}; }
BASIN_VJP(Softplus) { return {cot * sigmoid(in[0])}; }
BASIN_VJP(LogicalNot) { fail("[logical_not] is not differentiable"); }
BASIN_VJP(PowScalar) {
  if (p_ == 0.0) return {zeros_like(in[0])};
  return {cot * p_ * pow(in[0], p_ - 1.0)};
}
BASIN_VJP(Elu) {
  const Tensor positive = in[0] > 0.0;
  return {where(positive, cot, cot * (out + alpha_))};
}

BASIN_VJP(Add) {
  Tensors g;
  for (int i : argnums) g.push_back(i == 0 ? cot : cot);
  return g;
}
BASIN_VJP(Sub) {
  Tensors g;
  for (int i : argnums) g.push_back(i == 0 ? cot : -cot);
  return g;
}
BASIN_VJP(Mul) {
  Tensors g;
  for (int i : argnums) g.push_back(cot * in[1 - i]);
  return g;
}
BASIN_VJP(Div) {
  Tensors g;
  for (int i : argnums) g.push_back(i == 0 ? cot / in[1] : -cot * out / in[1]);
  return g;
}
BASIN_VJP(Pow) {
  Tensors g;
  for (int i : argnums) {
    if (i == 0) {
      g.push_back(cot * in[1] * pow(in[0], in[1] - 1.0));
    } else {
      // d/db a^b = a^b log a, taken as 0 where a == 0 (the limit for b > 0).
      const Tensor safe_a = where(in[0] == 0.0, ones_like(in[0]), in[0]);
      g.push_back(cot * out * log(safe_a));
    }
  }
  return g;
}
BASIN_VJP(Maximum) {
  // Ties share the gradient equally, as in PyTorch.
  const Tensor share = mask_of(in[0] > in[1], cot) + 0.5 * mask_of(in[0] == in[1], cot);
  Tensors g;
  for (int i : argnums) g.push_back(i == 0 ? cot * share : cot * (1.0 - share));
  return g;
}
BASIN_VJP(Minimum) {
  const Tensor share = mask_of(in[0] < in[1], cot) + 0.5 * mask_of(in[0] == in[1], cot);
  Tensors g;
  for (int i : argnums) g.push_back(i == 0 ? cot * share : cot * (1.0 - share));
  return g;
}
BASIN_VJP(Atan2) {
  const Tensor r2 = in[0] * in[0] + in[1] * in[1];
  Tensors g;
  for (int i : argnums) g.push_back(i == 0 ? cot * in[1] / r2 : -cot * in[0] / r2);
  return g;
}

#define BASIN_NOT_DIFFERENTIABLE(Name, api) \
  BASIN_VJP(Name) { fail("[" api "] is not differentiable"); }
BASIN_NOT_DIFFERENTIABLE(Equal, "equal")
BASIN_NOT_DIFFERENTIABLE(NotEqual, "not_equal")
BASIN_NOT_DIFFERENTIABLE(Less, "less")
BASIN_NOT_DIFFERENTIABLE(LessEqual, "less_equal")
BASIN_NOT_DIFFERENTIABLE(Greater, "greater")
BASIN_NOT_DIFFERENTIABLE(GreaterEqual, "greater_equal")
BASIN_NOT_DIFFERENTIABLE(LogicalAnd, "logical_and")
BASIN_NOT_DIFFERENTIABLE(LogicalOr, "logical_or")
BASIN_NOT_DIFFERENTIABLE(LogicalXor, "logical_xor")
#undef BASIN_NOT_DIFFERENTIABLE

BASIN_VJP(Where) {
  Tensors g;
  for (int i : argnums) {
    if (i == 0) fail("[where] is not differentiable in its condition");
    g.push_back(i == 1 ? where(in[0], cot, 0.0) : where(in[0], 0.0, cot));
  }
  return g;
}

BASIN_VJP(AsType) { return {cot.astype(in[0].dtype())}; }
BASIN_VJP(ToDevice) { return {cot.to(in[0].device())}; }

#undef BASIN_VJP
}  // namespace prims

// --- Tensor methods built on the copy ops --------------------------------------------------------
Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return apply(std::make_shared<prims::AsType>(), {*this}, shape(), dtype());
}

Tensor Tensor::astype(Dtype target) const {
  if (!defined()) fail("[astype] called on an undefined tensor");
  if (target == dtype()) return *this;
  return apply(std::make_shared<prims::AsType>(), {*this}, shape(), target);
}

Tensor Tensor::clone() const {
  if (!defined()) fail("[clone] called on an undefined tensor");
  return apply(std::make_shared<prims::AsType>(), {*this}, shape(), dtype());
}

Tensor Tensor::to(Device target) const {
  if (!defined()) fail("[to] called on an undefined tensor");
  if (target == device()) return *this;
  return apply(std::make_shared<prims::ToDevice>(), {contiguous()}, shape(), dtype(), target);
}

const Tensor& Tensor::assign(const Tensor& src) const {
  if (!defined() || !src.defined()) fail("[assign] got an undefined tensor");
  if (src.device() != device()) {
    fail("[assign] source is on {}, destination on {}", src.device().str(), device().str());
  }
  broadcast_shapes(src.shape(), shape(), "assign");
  if (broadcast_shapes(src.shape(), shape(), "assign") != shape()) {
    fail("[assign] cannot write a tensor of shape {} into one of shape {}", shape_str(src.shape()),
         shape_str(shape()));
  }
  Tensor self = *this;
  prims::AsType copy;
  if (device().is_cpu()) {
    copy.eval_cpu({src}, self);
  } else {
    copy.eval_cuda({src}, self);
  }
  return *this;
}

}  // namespace basin
