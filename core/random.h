// Counter-based random numbers (Philox4x32-10): element i of a draw uses counter block
// offset + i under the key `seed`, so results depend only on the seed and the generator's
// position, never on the thread count or the device.
#pragma once

#include <array>
#include <cstdint>

#include "core/tensor.h"

namespace basin {

/// Philox4x32-10 with a 64-bit key and a 128-bit counter (the block used by cuRAND's Philox).
std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_lo, uint64_t counter_hi = 0);

/// A stream of random numbers: a seed and a position (the number of Philox blocks consumed).
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  /// Restores a saved position (checkpoints save seed() and offset()).
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  /// Hands out `blocks` consecutive counter blocks; returns the first.
  uint64_t reserve(uint64_t blocks) {
    const uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

/// The process-wide generator used when none is given.
Generator& default_generator();
/// Reseeds the default generator (and rewinds it).
void manual_seed(uint64_t seed);

/// Uniform on [low, high).
Tensor uniform(const Shape& shape, double low = 0.0, double high = 1.0, Dtype dtype = Dtype::f32,
               Device device = Device::cpu(), Generator* gen = nullptr);
/// Uniform on [0, 1).
Tensor rand(const Shape& shape, Dtype dtype = Dtype::f32, Device device = Device::cpu(),
            Generator* gen = nullptr);
/// Normal with the given mean and standard deviation.
Tensor normal(const Shape& shape, double mean = 0.0, double std = 1.0, Dtype dtype = Dtype::f32,
              Device device = Device::cpu(), Generator* gen = nullptr);
/// Standard normal.
Tensor randn(const Shape& shape, Dtype dtype = Dtype::f32, Device device = Device::cpu(),
             Generator* gen = nullptr);
/// Integers uniform on [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& shape, Dtype dtype = Dtype::i64,
               Device device = Device::cpu(), Generator* gen = nullptr);
/// A bool mask, true with probability p.
Tensor bernoulli(const Shape& shape, double p, Device device = Device::cpu(),
                 Generator* gen = nullptr);
/// A bool mask, true with the probability in each element of `probs`.
Tensor bernoulli(const Tensor& probs, Generator* gen = nullptr);
/// A random permutation of 0..n-1 (int64).
Tensor randperm(int64_t n, Device device = Device::cpu(), Generator* gen = nullptr);

}  // namespace basin
