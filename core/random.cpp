// Philox4x32-10 and the random tensor constructors built on it. Values are generated on the host
// and moved to the target device.
#include "core/random.h"

#include <cmath>
#include <numeric>

#include "backends/cpu/parallel.h"
#include "core/ops/creation.h"

namespace basin {

std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_lo, uint64_t counter_hi) {
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t{0xD2511F53} * c0;
    const uint64_t p1 = uint64_t{0xCD9E8D57} * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

namespace {

// 53 random bits from two words, as a double in [0, 1).
double unit(uint32_t hi, uint32_t lo) {
  return static_cast<double>(((uint64_t{hi} << 32 | lo) >> 11)) * 0x1.0p-53;
}

/// Fills a host tensor of `shape` with value(block) where block is element i's Philox output.
template <class F>
Tensor draw(const Shape& shape, Dtype dtype, Device device, Generator* gen, const char* who,
            F value) {
  for (int64_t s : shape) {
    if (s < 0) fail("[{}] negative dimension in shape {}", who, shape_str(shape));
  }
  Generator& g = gen ? *gen : default_generator();
  const int64_t n = numel(shape);
  const uint64_t first = g.reserve(static_cast<uint64_t>(n));
  const uint64_t key = g.seed();
  Tensor t = zeros(shape, dtype);
  dispatch_all(dtype, who, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    cpu::parallel_for(n, 64, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        p[i] = static_cast<T>(value(philox4x32(key, first + static_cast<uint64_t>(i))));
    });
  });
  return device.is_cpu() ? t : t.to(device);
}

Generator* nonnull(Generator* gen) { return gen ? gen : &default_generator(); }

}  // namespace

Tensor uniform(const Shape& shape, double low, double high, Dtype dtype, Device device,
               Generator* gen) {
  if (!is_floating(dtype)) fail("[uniform] needs a floating dtype, got {}", dtype_name(dtype));
  if (!(low <= high)) fail("[uniform] low {} is above high {}", low, high);
  const double span = high - low;
  return draw(shape, dtype, device, nonnull(gen), "uniform",
              [=](const std::array<uint32_t, 4>& r) { return low + span * unit(r[0], r[1]); });
}

Tensor rand(const Shape& shape, Dtype dtype, Device device, Generator* gen) {
  return uniform(shape, 0.0, 1.0, dtype, device, gen);
}

Tensor normal(const Shape& shape, double mean, double std, Dtype dtype, Device device,
              Generator* gen) {
  if (!is_floating(dtype)) fail("[normal] needs a floating dtype, got {}", dtype_name(dtype));
  if (!(std >= 0)) fail("[normal] standard deviation must be non-negative, got {}", std);
  return draw(shape, dtype, device, nonnull(gen), "normal", [=](const std::array<uint32_t, 4>& r) {
    // Box–Muller; 1 - u keeps the logarithm finite.
    const double u1 = 1.0 - unit(r[0], r[1]);
    const double u2 = unit(r[2], r[3]);
    return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  });
}

Tensor randn(const Shape& shape, Dtype dtype, Device device, Generator* gen) {
  return normal(shape, 0.0, 1.0, dtype, device, gen);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Dtype dtype, Device device,
               Generator* gen) {
  if (low >= high) fail("[randint] empty range [{}, {})", low, high);
  if (!is_integral(dtype) && !is_floating(dtype)) fail("[randint] needs a numeric dtype");
  const uint64_t span = static_cast<uint64_t>(high - low);
  return draw(shape, dtype, device, nonnull(gen), "randint", [=](const std::array<uint32_t, 4>& r) {
    const uint64_t bits = uint64_t{r[0]} << 32 | r[1];
    return low + static_cast<int64_t>(bits % span);
  });
}

Tensor bernoulli(const Shape& shape, double p, Device device, Generator* gen) {
  if (!(p >= 0 && p <= 1)) fail("[bernoulli] probability must be in [0, 1], got {}", p);
  return draw(shape, Dtype::boolean, device, nonnull(gen), "bernoulli",
              [=](const std::array<uint32_t, 4>& r) { return unit(r[0], r[1]) < p; });
}

Tensor bernoulli(const Tensor& probs, Generator* gen) {
  if (!is_floating(probs.dtype())) fail("[bernoulli] probabilities must be floating");
  const auto p = probs.to_vector<double>();
  Generator& g = gen ? *gen : default_generator();
  const uint64_t first = g.reserve(p.size());
  std::vector<uint8_t> mask(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    const auto r = philox4x32(g.seed(), first + i);
    mask[i] = unit(r[0], r[1]) < p[i];
  }
  return from_vector(mask, probs.shape()).astype(Dtype::boolean).to(probs.device());
}

Tensor randperm(int64_t n, Device device, Generator* gen) {
  if (n < 0) fail("[randperm] n must be non-negative, got {}", n);
  Generator& g = gen ? *gen : default_generator();
  const uint64_t first = g.reserve(static_cast<uint64_t>(n));
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  // Fisher–Yates, one Philox block per swap.
  for (int64_t i = n - 1; i > 0; --i) {
    const auto r = philox4x32(g.seed(), first + static_cast<uint64_t>(i));
    const int64_t j =
        static_cast<int64_t>((uint64_t{r[0]} << 32 | r[1]) % static_cast<uint64_t>(i + 1));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  return from_vector(perm, {n}, device);
}

}  // namespace basin
