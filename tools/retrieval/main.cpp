// basin-retrieval: stores a folder of photographs in three associative memories (classical
// Hopfield, Dense Associative Memory, modern continuous Hopfield), cues each with its top half
// only, and writes a PNG grid of what each memory retrieves (rows: original, cue, classical,
// dense, modern) with each model's pixel error.
//
//   basin-retrieval [--data ../shared/data/skimage-photos] [--size 32] [--out retrieval.png]
//
// Images are centre-cropped to a square, box-averaged to size × size gray levels v ∈ [0, 1].
// The binary memories store the bits sgn(v − mean) of each image, and their cues carry random
// bits (seeded) in the masked half; the modern network stores each image standardised,
// (v − mean)/std, its cues hold 0 in the masked half, and what it retrieves is shown in gray
// levels through the stored means and deviations weighted by its attention.
//
// Exit codes: 0 done, 1 failed, 2 bad usage.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "basin/basin.h"
#include "data/image.h"
#include "models/energy/classical.h"
#include "models/energy/dense.h"
#include "models/energy/modern.h"

namespace fs = std::filesystem;
using namespace basin;
using namespace basin::energy;

namespace {

// The image at `path` as size × size gray levels in [0, 1]: the centred square crop, trimmed to
// a multiple of `size` and box-averaged.
Tensor load_gray(const std::string& path, int64_t size) {
  const Tensor image = data::to_unit_float(data::read_image(path, 1));  // (1, H, W)
  const int64_t h = image.shape(1), w = image.shape(2);
  const int64_t factor = std::min(h, w) / size;
  check(factor >= 1, "[basin-retrieval] {} is {}×{}, smaller than {}×{}", path, h, w, size, size);
  const int64_t side = factor * size;
  const Tensor square =
      slice(slice(reshape(image, {h, w}), 0, (h - side) / 2, (h - side) / 2 + side), 1,
            (w - side) / 2, (w - side) / 2 + side);
  return mean(reshape(square.contiguous(), {size, factor, size, factor}), {1, 3});
}

// The mean and the standard deviation of each row of `x` (P, N), as (P, 1) each.
std::pair<Tensor, Tensor> row_stats(const Tensor& x) {
  return {mean(x, {1}, true), basin::std(x, {1}, true)};
}

// A grid of tiles (rows × columns), each scaled up by `zoom`, with a 2-pixel white margin.
Tensor grid(const std::vector<std::vector<Tensor>>& rows, int64_t size, int64_t zoom) {
  const int64_t margin = 2, cell = size * zoom + margin;
  const auto n_rows = static_cast<int64_t>(rows.size());
  const auto n_cols = static_cast<int64_t>(rows.front().size());
  const int64_t height = n_rows * cell + margin, width = n_cols * cell + margin;
  std::vector<float> canvas(static_cast<size_t>(height * width), 1.0f);
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t c = 0; c < n_cols; ++c) {
      const std::vector<float> v = rows[r][c].astype(Dtype::f32).contiguous().to_vector<float>();
      for (int64_t y = 0; y < size * zoom; ++y) {
        for (int64_t x = 0; x < size * zoom; ++x) {
          const float value = std::clamp(v[(y / zoom) * size + x / zoom], 0.0f, 1.0f);
          canvas[(margin + r * cell + y) * width + margin + c * cell + x] = value;
        }
      }
    }
  }
  return from_vector(canvas, Shape{height, width});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Retrieve half-masked photographs from three associative memories.",
               "basin-retrieval"};
  std::string data_dir = "../shared/data/skimage-photos", out = "retrieval.png";
  int64_t size = 32, zoom = 3;
  int degree = 6;
  double beta = 0.1;
  app.add_option("--data", data_dir, "folder of images (PNG, JPEG, ...)");
  app.add_option("--size", size, "side of the gray image each photo is reduced to")
      ->check(CLI::Range(int64_t{4}, int64_t{256}));
  app.add_option("--out,-o", out, "the PNG grid to write");
  app.add_option("--zoom", zoom, "pixel size of a tile in the grid")
      ->check(CLI::Range(int64_t{1}, int64_t{16}));
  app.add_option("--degree", degree, "n of the Dense AM's rectified polynomial F(x) = xⁿ/n")
      ->check(CLI::Range(2, 30));
  app.add_option("--beta", beta, "β of the modern Hopfield network")->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "basin-retrieval: error: " << e.what() << '\n';
    return 2;
  }

  try {
    std::vector<std::string> files;
    if (!fs::is_directory(data_dir)) {
      std::cerr << "basin-retrieval: error: --data " << data_dir << ": no such folder\n";
      return 2;
    }
    for (const std::string& name : data::list_images(data_dir))
      files.push_back((fs::path(data_dir) / name).string());
    if (files.size() < 2) {
      std::cerr << "basin-retrieval: error: " << data_dir << " holds fewer than 2 images\n";
      return 2;
    }
    const auto p = static_cast<int64_t>(files.size());
    const int64_t n = size * size;
    Tensors images;
    for (const std::string& f : files) images.push_back(reshape(load_gray(f, size), {n}));
    const Tensor gray = stack(images, 0);  // (P, N) in [0, 1]
    const auto [means, stds] = row_stats(gray);
    const Tensor bits = where(gray >= means, ones({p, n}), -1.0);  // (P, N) ±1
    const Tensor standard = (gray - means) / (stds + 1e-6);        // (P, N)
    // The cues keep the top half: the rest is random bits for the binary memories (a constant
    // would favour the images whose bottom half has that colour), 0 for the modern one.
    const Tensor top =
        reshape(concat({ones({size / 2, size}), zeros({size - size / 2, size})}, 0), {1, n});
    const Tensor keep = top > 0.5;
    Generator gen(0);
    const Tensor noise = where(bernoulli({p, n}, 0.5, Device::cpu(), &gen), ones({p, n}), -1.0);
    const Tensor binary_cue = where(keep, bits, noise);
    const Tensor continuous_cue = where(keep, standard, zeros({p, n}));

    const Tensor classical = ClassicalHopfield(bits).retrieve(binary_cue, 100).state;
    DenseAssociativeMemory dam(bits, {Interaction::rectified_polynomial, degree, 1.0});
    const Tensor dense = dam.retrieve(binary_cue, 100).state;
    ModernHopfield modern(standard, beta);
    const RetrievalResult m = modern.retrieve(continuous_cue, 100, 1e-6);
    const Tensor attention = modern.attention(m.state);  // (P, P)
    const Tensor modern_gray = matmul(attention, means) + matmul(attention, stds) * m.state;

    auto bit_error = [&](const Tensor& got, const Tensor& mask) {
      const Tensor wrong = not_equal(got, bits).astype(Dtype::f64);
      return (sum(wrong * mask) / sum(mask * ones({p, n}))).item<double>();
    };
    const Tensor all = ones({1, n}, Dtype::f64);
    const Tensor masked = (!keep).astype(Dtype::f64);
    const Tensor modern_bits = where(m.state >= 0.0, ones({p, n}), -1.0);
    std::printf("%ld images, %ldx%ld = %ld pixels; cue: the top half (bottom half masked)\n",
                static_cast<long>(p), static_cast<long>(size), static_cast<long>(size),
                static_cast<long>(n));
    std::printf("%-46s %14s %14s\n", "model", "bit error all", "masked half");
    auto report = [&](const std::string& name, const Tensor& got) {
      std::printf("%-46s %13.1f%% %13.1f%%\n", name.c_str(), 100 * bit_error(got, all),
                  100 * bit_error(got, masked));
    };
    report("cue", binary_cue);
    report("classical Hopfield", classical);
    report(fmt::format("Dense AM, rectified x^{}/{}", degree, degree), dense);
    report(fmt::format("modern Hopfield beta={} (sign of the state)", beta), modern_bits);
    const double mae = mean(abs(modern_gray - gray)).item<double>();
    const double mae_masked =
        (sum(abs(modern_gray - gray) * masked) / sum(masked * ones({p, n}))).item<double>();
    std::printf("modern Hopfield gray levels: mean |error| %.4f (masked half %.4f), %d steps\n",
                mae, mae_masked, m.sweeps);

    // Rows: original, cue, classical, dense, modern; binary states shown black/white.
    auto to_unit = [](const Tensor& s) { return (s + 1.0) * 0.5; };
    const Tensor cue_gray = where(keep, gray, full({p, n}, 0.5));
    std::vector<std::vector<Tensor>> rows(5);
    for (int64_t i = 0; i < p; ++i) {
      auto tile = [&](const Tensor& t) { return reshape(slice(t, 0, i, i + 1), {n}); };
      rows[0].push_back(tile(gray));
      rows[1].push_back(tile(cue_gray));
      rows[2].push_back(tile(to_unit(classical)));
      rows[3].push_back(tile(to_unit(dense)));
      rows[4].push_back(tile(modern_gray));
    }
    data::write_png(out, grid(rows, size, zoom));
    std::printf("wrote %s (rows: original, cue, classical, dense, modern)\n", out.c_str());
  } catch (const Error& e) {
    std::cerr << "basin-retrieval: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
