// Counter-based random numbers (Philox4x32-10): element i of a draw uses counter block
// offset + i under the key `seed`, so results depend only on the seed and the generator's
// position, never on the thread count or the device.
#pragma once

#include <algorithm>
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

/// Random numbers drawn one at a time from the Philox blocks (key, counter, i) for i = 0, 1, ...:
/// each (key, counter) pair, such as a seed and an item index, is a stream of its own. Every draw
/// takes a fixed number of 32-bit words, so a sequence of draws is reproducible.
class PhiloxStream {
 public:
  PhiloxStream(uint64_t key, uint64_t counter) : key_(key), counter_(counter) {}
  /// The next 32 random bits.
  uint32_t next() {
    if (used_ == 4) {
      block_ = philox4x32(key_, counter_, drawn_++);
      used_ = 0;
    }
    return block_[used_++];
  }
  /// Uniform float on [lo, hi) from the top 24 bits of one word.
  float uniform(float lo = 0.0f, float hi = 1.0f) {
    return lo + (hi - lo) * static_cast<float>(next() >> 8) * 0x1.0p-24f;
  }
  /// Uniform on {0, ..., n - 1} from one word.
  int64_t below(int64_t n) {
    return std::min(n - 1, static_cast<int64_t>(static_cast<double>(next()) * 0x1.0p-32 *
                                                static_cast<double>(n)));
  }
  /// Uniform double on [0, 1) from 53 bits of two words.
  double uniform_double() {
    const uint64_t hi = next(), lo = next();
    return static_cast<double>((hi << 32 | lo) >> 11) * 0x1.0p-53;
  }
  /// Uniform on {0, ..., n - 1} from uniform_double() (two words).
  int64_t below_double(int64_t n) {
    return std::min(n - 1, static_cast<int64_t>(uniform_double() * static_cast<double>(n)));
  }

 private:
  uint64_t key_, counter_, drawn_ = 0;
  std::array<uint32_t, 4> block_{};
  int used_ = 4;
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
