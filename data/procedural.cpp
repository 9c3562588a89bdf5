// Procedural images drawn per item from a Philox stream: each kind is a small pixel shader.
#include "data/procedural.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <vector>

#include "core/ops/creation.h"
#include "core/random.h"

namespace basin::data {
namespace {

constexpr float kPi = std::numbers::pi_v<float>;

struct Rgb {
  float r = 0, g = 0, b = 0;
};

Rgb lerp(const Rgb& a, const Rgb& b, float t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

float luma(const Rgb& c) { return 0.299f * c.r + 0.587f * c.g + 0.114f * c.b; }

float smoothstep(float t) {
  t = std::clamp(t, 0.0f, 1.0f);
  return t * t * (3.0f - 2.0f * t);
}

// The fraction of a pixel covered by a shape whose signed distance (in pixels, negative inside) at
// the pixel's centre is d: a one-pixel antialiased edge.
float coverage(float d) { return std::clamp(0.5f - d, 0.0f, 1.0f); }

Rgb random_colour(PhiloxStream& rng) { return {rng.uniform(), rng.uniform(), rng.uniform()}; }

// A colour that stands out from `other` (in brightness or hue), so that edges are visible.
Rgb contrasting_colour(PhiloxStream& rng, const Rgb& other) {
  Rgb c = random_colour(rng);
  for (int attempt = 0; attempt < 8; ++attempt) {
    const float dr = c.r - other.r, dg = c.g - other.g, db = c.b - other.b;
    if (std::abs(luma(c) - luma(other)) > 0.2f || dr * dr + dg * dg + db * db > 0.3f) break;
    c = random_colour(rng);
  }
  return c;
}

// Two or three colours and a ramp through them.
struct Ramp {
  std::array<Rgb, 3> colours;
  int n = 2;

  static Ramp random(PhiloxStream& rng) {
    Ramp ramp;
    ramp.n = rng.uniform() < 0.5f ? 2 : 3;
    ramp.colours[0] = random_colour(rng);
    for (int i = 1; i < ramp.n; ++i) ramp.colours[i] = contrasting_colour(rng, ramp.colours[i - 1]);
    return ramp;
  }
  Rgb operator()(float t) const {
    t = std::clamp(t, 0.0f, 1.0f);
    if (n == 2) return lerp(colours[0], colours[1], t);
    return t < 0.5f ? lerp(colours[0], colours[1], 2.0f * t)
                    : lerp(colours[1], colours[2], 2.0f * t - 1.0f);
  }
};

struct Vec {
  float x = 0, y = 0;
};

Vec direction(float angle) { return {std::cos(angle), std::sin(angle)}; }
float dot(Vec a, Vec b) { return a.x * b.x + a.y * b.y; }

// The colours of an image, row-major (size × size). Each shade_* function below fills them for one
// kind, drawing its parameters from the item's stream; s is the size as a float.
using Pixels = std::vector<Rgb>;

void shade_gradient(PhiloxStream& rng, float s, Pixels& px, int64_t size) {
  const Ramp ramp = Ramp::random(rng);
  const bool radial = rng.uniform() < 0.5f;
  const Vec dir = direction(rng.uniform(0.0f, 2.0f * kPi));
  const float span = rng.uniform(0.6f, 1.4f) * s;
  const Vec centre = {rng.uniform(0.2f, 0.8f) * s, rng.uniform(0.2f, 0.8f) * s};
  const float radius = rng.uniform(0.5f, 1.2f) * s;
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      const Vec d = {static_cast<float>(x) + 0.5f - centre.x,
                     static_cast<float>(y) + 0.5f - centre.y};
      const float t = radial ? std::sqrt(dot(d, d)) / radius : 0.5f + dot(d, dir) / span;
      px[static_cast<size_t>(y * size + x)] = ramp(smoothstep(t));
    }
}

// Two colours mixed by a soft square wave: 0.5 + 0.5 tanh(k w) / tanh(k) for a wave w in [-1, 1].
float soft_square(float wave, float sharpness) {
  return 0.5f + 0.5f * std::tanh(sharpness * wave) / std::tanh(sharpness);
}

void shade_stripes(PhiloxStream& rng, float s, Pixels& px, int64_t size) {
  const Rgb a = random_colour(rng), b = contrasting_colour(rng, a);
  const Vec dir = direction(rng.uniform(0.0f, kPi));
  const float period = rng.uniform(0.15f, 0.5f) * s;
  const float phase = rng.uniform(0.0f, 2.0f * kPi);
  const float sharpness = rng.uniform(2.0f, 8.0f);
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      const Vec p = {static_cast<float>(x) + 0.5f, static_cast<float>(y) + 0.5f};
      const float wave = std::sin(2.0f * kPi * dot(p, dir) / period + phase);
      px[static_cast<size_t>(y * size + x)] = lerp(a, b, soft_square(wave, sharpness));
    }
}

void shade_checkerboard(PhiloxStream& rng, float s, Pixels& px, int64_t size) {
  const Rgb a = random_colour(rng), b = contrasting_colour(rng, a);
  const float angle = rng.uniform(0.0f, 0.5f * kPi);
  const Vec u = direction(angle), v = direction(angle + 0.5f * kPi);
  const float cell = rng.uniform(0.12f, 0.35f) * s;
  const float pu = rng.uniform(0.0f, 2.0f * kPi), pv = rng.uniform(0.0f, 2.0f * kPi);
  const float sharpness = rng.uniform(3.0f, 10.0f);
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      const Vec p = {static_cast<float>(x) + 0.5f, static_cast<float>(y) + 0.5f};
      const float wave =
          std::sin(kPi * dot(p, u) / cell + pu) * std::sin(kPi * dot(p, v) / cell + pv);
      px[static_cast<size_t>(y * size + x)] = lerp(a, b, soft_square(wave, sharpness));
    }
}

// Value noise: random values on a (cells + 1)² lattice over the image, interpolated with a
// smoothstep fade (continuous with a continuous gradient).
class ValueNoise {
 public:
  ValueNoise(PhiloxStream& rng, int64_t cells)
      : cells_(cells), values_(static_cast<size_t>((cells + 1) * (cells + 1))) {
    for (float& v : values_) v = rng.uniform();
  }
  // The noise at (u, v) in [0, 1)².
  float operator()(float u, float v) const {
    const float fx = u * static_cast<float>(cells_), fy = v * static_cast<float>(cells_);
    const int64_t ix = std::min<int64_t>(static_cast<int64_t>(fx), cells_ - 1);
    const int64_t iy = std::min<int64_t>(static_cast<int64_t>(fy), cells_ - 1);
    const float tx = smoothstep(fx - static_cast<float>(ix)),
                ty = smoothstep(fy - static_cast<float>(iy));
    const auto at = [&](int64_t i, int64_t j) {
      return values_[static_cast<size_t>(j * (cells_ + 1) + i)];
    };
    const float top = at(ix, iy) + (at(ix + 1, iy) - at(ix, iy)) * tx;
    const float bottom = at(ix, iy + 1) + (at(ix + 1, iy + 1) - at(ix, iy + 1)) * tx;
    return top + (bottom - top) * ty;
  }

 private:
  int64_t cells_;
  std::vector<float> values_;
};

void shade_noise(PhiloxStream& rng, float s, Pixels& px, int64_t size) {
  const Ramp ramp = Ramp::random(rng);
  const int64_t cells = 2 + rng.below(4);
  const ValueNoise coarse(rng, cells), fine(rng, 2 * cells);
  const float contrast = rng.uniform(1.5f, 2.5f);
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      const float u = (static_cast<float>(x) + 0.5f) / s, v = (static_cast<float>(y) + 0.5f) / s;
      const float n = (coarse(u, v) + 0.5f * fine(u, v)) / 1.5f;
      px[static_cast<size_t>(y * size + x)] = ramp(0.5f + (n - 0.5f) * contrast);
    }
}

// Signed distance (pixels, negative inside) of p from one of the filled shapes.
struct Shape2d {
  int type = 0;  // 0 disc, 1 rectangle, 2 triangle
  Vec centre;
  float radius = 0;            // disc
  Vec half, axis;              // rectangle: half sides along axis and its perpendicular
  std::array<Vec, 3> tri;      // triangle, counter-clockwise
  std::array<Vec, 3> normals;  // outward unit normals of the triangle's edges

  float distance(Vec p) const {
    const Vec d = {p.x - centre.x, p.y - centre.y};
    if (type == 0) return std::sqrt(dot(d, d)) - radius;
    if (type == 1) {
      const float lx = dot(d, axis), ly = -d.x * axis.y + d.y * axis.x;
      return std::max(std::abs(lx) - half.x, std::abs(ly) - half.y);
    }
    float out = -1e30f;
    for (int k = 0; k < 3; ++k) {
      out = std::max(out, dot({p.x - tri[k].x, p.y - tri[k].y}, normals[k]));
    }
    return out;
  }

  static Shape2d random(PhiloxStream& rng, float s) {
    Shape2d sh;
    sh.type = static_cast<int>(rng.below(3));
    sh.centre = {rng.uniform(0.15f, 0.85f) * s, rng.uniform(0.15f, 0.85f) * s};
    if (sh.type == 0) {
      sh.radius = rng.uniform(0.08f, 0.3f) * s;
    } else if (sh.type == 1) {
      sh.half = {rng.uniform(0.08f, 0.3f) * s, rng.uniform(0.08f, 0.3f) * s};
      sh.axis = direction(rng.uniform(0.0f, kPi));
    } else {
      const float r = rng.uniform(0.12f, 0.35f) * s, base = rng.uniform(0.0f, 2.0f * kPi);
      for (int k = 0; k < 3; ++k) {
        const Vec d =
            direction(base + 2.0f * kPi * static_cast<float>(k) / 3.0f + rng.uniform(-0.4f, 0.4f));
        sh.tri[k] = {sh.centre.x + r * d.x, sh.centre.y + r * d.y};
      }
      for (int k = 0; k < 3; ++k) {
        const Vec a = sh.tri[k], b = sh.tri[(k + 1) % 3];
        const float len = std::hypot(b.x - a.x, b.y - a.y);
        sh.normals[k] = {(b.y - a.y) / len, -(b.x - a.x) / len};  // outward for counter-clockwise
      }
    }
    return sh;
  }
};

void shade_shapes(PhiloxStream& rng, float s, Pixels& px, int64_t size) {
  const Rgb a = random_colour(rng), b = contrasting_colour(rng, a);
  const Vec dir = direction(rng.uniform(0.0f, 2.0f * kPi));
  const float amount = rng.uniform(0.2f, 0.8f);
  const Rgb mean = lerp(a, b, 0.5f);
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      const Vec d = {static_cast<float>(x) + 0.5f - 0.5f * s,
                     static_cast<float>(y) + 0.5f - 0.5f * s};
      px[static_cast<size_t>(y * size + x)] =
          lerp(a, b, std::clamp(0.5f + amount * dot(d, dir) / s, 0.0f, 1.0f));
    }
  const int64_t count = 1 + rng.below(4);
  for (int64_t i = 0; i < count; ++i) {
    const Shape2d shape = Shape2d::random(rng, s);
    const Rgb colour = contrasting_colour(rng, mean);
    for (int64_t y = 0; y < size; ++y)
      for (int64_t x = 0; x < size; ++x) {
        const float c =
            coverage(shape.distance({static_cast<float>(x) + 0.5f, static_cast<float>(y) + 0.5f}));
        if (c > 0.0f) {
          Rgb& p = px[static_cast<size_t>(y * size + x)];
          p = lerp(p, colour, c);
        }
      }
  }
}

}  // namespace

const char* procedural_kind_name(ProceduralKind kind) {
  switch (kind) {
    case ProceduralKind::shapes:
      return "shapes";
    case ProceduralKind::gradient:
      return "gradient";
    case ProceduralKind::stripes:
      return "stripes";
    case ProceduralKind::checkerboard:
      return "checkerboard";
    case ProceduralKind::noise:
      return "noise";
  }
  fail("[procedural_kind_name] unknown kind {}", static_cast<int64_t>(kind));
}

ProceduralImages::ProceduralImages(ProceduralOptions options) : options_(options) {
  if (options_.size < 4 || options_.size > 4096) {
    fail("[procedural_images] size must lie in [4, 4096], got {}", options_.size);
  }
  if (options_.channels != 1 && options_.channels != 3) {
    fail("[procedural_images] channels must be 1 or 3, got {}", options_.channels);
  }
  if (options_.count < 0)
    fail("[procedural_images] count must be non-negative, got {}", options_.count);
}

ProceduralKind ProceduralImages::kind(int64_t index) const {
  check_index("procedural_images", index, size());
  PhiloxStream rng(options_.seed, static_cast<uint64_t>(index));
  return static_cast<ProceduralKind>(rng.below(kProceduralKinds));
}

Tensor ProceduralImages::image(int64_t index) const {
  check_index("procedural_images", index, size());
  PhiloxStream rng(options_.seed, static_cast<uint64_t>(index));
  const auto kind = static_cast<ProceduralKind>(rng.below(kProceduralKinds));  // as kind()
  const int64_t n = options_.size;
  const float s = static_cast<float>(n);
  Pixels px(static_cast<size_t>(n * n));
  switch (kind) {
    case ProceduralKind::shapes:
      shade_shapes(rng, s, px, n);
      break;
    case ProceduralKind::gradient:
      shade_gradient(rng, s, px, n);
      break;
    case ProceduralKind::stripes:
      shade_stripes(rng, s, px, n);
      break;
    case ProceduralKind::checkerboard:
      shade_checkerboard(rng, s, px, n);
      break;
    case ProceduralKind::noise:
      shade_noise(rng, s, px, n);
      break;
  }
  Tensor out = zeros({options_.channels, n, n}, Dtype::f32);
  float* p = out.data<float>();
  const size_t plane = px.size();
  for (size_t i = 0; i < plane; ++i) {
    const Rgb& c = px[i];
    if (options_.channels == 1) {
      p[i] = std::clamp(luma(c), 0.0f, 1.0f);
    } else {
      p[i] = std::clamp(c.r, 0.0f, 1.0f);
      p[plane + i] = std::clamp(c.g, 0.0f, 1.0f);
      p[2 * plane + i] = std::clamp(c.b, 0.0f, 1.0f);
    }
  }
  return out;
}

Example ProceduralImages::get(int64_t index) const {
  check_index("procedural_images", index, size());
  return {{"image", image(index)}, {"label", scalar(static_cast<double>(kind(index)), Dtype::i64)}};
}

std::shared_ptr<ProceduralImages> procedural_images(ProceduralOptions options) {
  return std::make_shared<ProceduralImages>(options);
}

}  // namespace basin::data
