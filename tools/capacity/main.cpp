// basin-capacity: measures the storage capacity of the associative memories on random bipolar
// patterns. For each model and pattern size N it finds the largest number of stored patterns P
// whose retrieval has at most 1% bit errors, from the stored patterns themselves ("clean") and
// from cues with 10% of their bits flipped ("noisy"), over a few seeds; prints a table and writes
// capacity.json and capacity.png (gnuplot) to the output folder.
//
//   basin-capacity [--out capacity] [--seeds 3] [--models classical,dense_n3] [--quick]
//
// Exit codes: 0 done, 1 a measurement failed, 2 bad usage.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <omp.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "basin/basin.h"
#include "models/energy/classical.h"
#include "models/energy/dense.h"
#include "models/energy/modern.h"

namespace fs = std::filesystem;
using namespace basin;
using namespace basin::energy;

namespace {

struct Settings {
  int seeds = 3;
  int64_t probes = 50;      // stored patterns used as cues per evaluation
  double noise = 0.1;       // fraction of a noisy cue's bits flipped
  double threshold = 0.01;  // largest bit error rate that counts as retrieval
  int64_t max_patterns = 65536;
  double beta = 1.0;        // β of the log-sum-exp Dense AM and of the modern network
  double precision = 0.02;  // the bisection stops when (fail − pass) ≤ precision · pass
};

// Retrieves `cues` (B, N) from a memory of `patterns` (P, N), both ±1 f32; returns ±1 (B, N).
using Retriever = std::function<Tensor(const Tensor& patterns, const Tensor& cues, Generator&)>;

struct Model {
  std::string name, label;
  std::vector<int64_t> sizes;
  Retriever retrieve;
  // The reference capacity from theory, for clean and for noisy cues (0: none drawn).
  std::function<double(int64_t)> theory_clean, theory_noisy;
  std::string theory;  // what the reference is
  bool draw_theory = true;
};

double double_factorial(int k) {
  double r = 1;
  for (int i = k; i > 1; i -= 2) r *= i;
  return r;
}

std::vector<Model> make_models(const Settings& s, bool quick) {
  auto pick = [quick](std::vector<int64_t> full, std::vector<int64_t> small) {
    return quick ? small : full;
  };
  std::vector<Model> models;
  // I(a) of Demircigil et al.: exponential capacity exp(αN) for α < I(1 − 2ρ)/2 at radius ρN.
  const double a = 1 - 2 * s.noise;
  const double rate_noisy = 0.25 * ((1 + a) * std::log(1 + a) + (1 - a) * std::log(1 - a));
  models.push_back(
      {"classical", "classical Hopfield", pick({32, 64, 128, 256, 512, 1024}, {32, 64}),
       [](const Tensor& x, const Tensor& cues, Generator& gen) {
         return ClassicalHopfield(x).retrieve(cues, 100, UpdateRule::random, &gen).state;
       },
       [](int64_t n) { return 0.138 * n; }, [](int64_t n) { return 0.138 * n; },
       "0.138 N (Amit et al.; small errors)"});
  for (int degree : {2, 3, 4}) {
    std::vector<int64_t> sizes = degree == 2   ? pick({32, 64, 128, 256, 512}, {32, 64})
                                 : degree == 3 ? pick({16, 24, 32, 48, 64, 96, 128}, {16, 24})
                                               : pick({12, 16, 20, 24, 32, 40, 48}, {12, 16});
    const double df = double_factorial(2 * degree - 3);
    auto error_free = [degree, df](int64_t n) {
      return std::pow(static_cast<double>(n), degree - 1) / (2 * df * std::log(double(n)));
    };
    models.push_back({fmt::format("dense_n{}", degree), fmt::format("Dense AM x^{}", degree), sizes,
                      [degree](const Tensor& x, const Tensor& cues, Generator& gen) {
                        DenseAssociativeMemory dam(x, {Interaction::polynomial, degree, 1.0});
                        return dam.retrieve(cues, 100, UpdateRule::random, &gen).state;
                      },
                      error_free, error_free,
                      fmt::format("N^{}/(2·{}!!·ln N) (error-free, Krotov & Hopfield)", degree - 1,
                                  2 * degree - 3)});
  }
  const double beta = s.beta;
  models.push_back({"dense_lse", fmt::format("Dense AM LSE beta={}", beta),
                    pick({8, 12, 16, 20, 24, 28, 32}, {8, 12}),
                    [beta](const Tensor& x, const Tensor& cues, Generator& gen) {
                      DenseAssociativeMemory dam(x, {Interaction::log_sum_exp, 2, beta});
                      return dam.retrieve(cues, 100, UpdateRule::random, &gen).state;
                    },
                    [](int64_t n) { return std::pow(2.0, 0.5 * n); },
                    [rate_noisy](int64_t n) { return std::exp(rate_noisy * n); },
                    fmt::format("2^(N/2) clean, exp({:.3f} N) noisy (Demircigil et al., "
                                "asymptotic)",
                                rate_noisy)});
  models.push_back({"modern", fmt::format("modern Hopfield beta={}", beta),
                    pick({8, 12, 16, 20, 24, 28, 32}, {8, 12}),
                    [beta](const Tensor& x, const Tensor& cues, Generator&) {
                      const Tensor xi = ModernHopfield(x, beta).retrieve(cues, 50, 1e-6).state;
                      return where(xi < 0.0, -ones_like(xi), ones_like(xi));
                    },
                    [](int64_t n) { return std::pow(2.0, 0.5 * n); },
                    [rate_noisy](int64_t n) { return std::exp(rate_noisy * n); },
                    "as the LSE Dense AM", /*draw_theory=*/false});
  return models;
}

// The patterns and noise of one (N, seed): a bank of random patterns whose first P rows are the
// memory of size P, drawn in blocks of 1024 rows as the search needs them (each block from its
// own generator, so the bank does not depend on the order of the search), and for each of the
// `probes` noisy cues the bits it flips. Cue k targets pattern k mod P; it flips ⌊ρN⌋ or ⌈ρN⌉
// bits, so that on average exactly a fraction ρ is flipped whatever N (rounding ρN for every
// cue would make the noise jump between sizes).
class Bank {
 public:
  Bank(int64_t n, int64_t probes, double noise, uint64_t seed) : n_(n), seed_(seed) {
    Generator gen(seed);
    const double expected = noise * static_cast<double>(n);
    const auto floor_flips = static_cast<int64_t>(std::floor(expected));
    const auto extra = static_cast<int64_t>(
        std::lround((expected - static_cast<double>(floor_flips)) * static_cast<double>(probes)));
    for (int64_t k = 0; k < probes; ++k) {
      const auto order = randperm(n, Device::cpu(), &gen).to_vector<int64_t>();
      const int64_t count = std::min(n, floor_flips + (k < extra ? 1 : 0));
      flips.emplace_back(order.begin(), order.begin() + count);
    }
  }
  /// The first p patterns, (p, N).
  Tensor patterns(int64_t p) {
    constexpr int64_t block = 1024;
    while (rows_ < p) {
      Generator gen(seed_ * 7919 + static_cast<uint64_t>(rows_ / block) + 1);
      const Tensor next =
          where(bernoulli({block, n_}, 0.5, Device::cpu(), &gen), ones({block, n_}), -1.0);
      all_ = all_.defined() ? concat({all_, next}, 0) : next;
      rows_ += block;
    }
    return slice(all_, 0, 0, p);
  }
  std::vector<std::vector<int64_t>> flips;  // (probes) bit indices

 private:
  int64_t n_, rows_ = 0;
  uint64_t seed_;
  Tensor all_;
};

// The targets (B, N) and cues (B, N) for a memory of the first p patterns: clean cues are the
// first min(p, probes) patterns themselves, noisy cues all `probes` flip sets.
std::pair<Tensor, Tensor> make_cues(Bank& bank, int64_t p, int64_t probes, bool noisy) {
  const Tensor stored = bank.patterns(std::min(p, probes));
  if (!noisy) return {stored, stored};
  const int64_t n = stored.shape(1);
  const std::vector<float> all = stored.contiguous().to_vector<float>();
  std::vector<float> targets(static_cast<size_t>(probes * n));
  for (int64_t k = 0; k < probes; ++k) {
    std::copy_n(all.begin() + (k % p) * n, n, targets.begin() + k * n);
  }
  std::vector<float> cues = targets;
  for (int64_t k = 0; k < probes; ++k) {
    for (const int64_t i : bank.flips[k]) cues[k * n + i] *= -1.0f;
  }
  return {from_vector(targets, Shape{probes, n}), from_vector(cues, Shape{probes, n})};
}

struct Search {
  int64_t capacity = 0;
  bool saturated = false;  // the criterion still held at the largest P tried
  int evaluations = 0;
};

// The largest P ≤ cap with error(P) ≤ threshold. P grows by ×1.4 until two sizes in a row fail
// (a single failure at small P can be a pair of close patterns that a larger memory's many
// cues dilute), then the bracket (last pass, the failure after it) is bisected.
Search find_capacity(const std::function<double(int64_t)>& error, int64_t cap, const Settings& s) {
  Search out;
  auto passes = [&](int64_t p) {
    ++out.evaluations;
    return error(p) <= s.threshold;
  };
  int64_t pass = 0, fail = -1;
  for (int64_t p = 1, failures = 0; p <= cap && failures < 2;) {
    if (passes(p)) {
      pass = p;
      fail = -1;
      failures = 0;
    } else {
      if (fail < 0) fail = p;
      ++failures;
    }
    if (p == cap) break;
    p = std::min(cap, std::max(p + 1, static_cast<int64_t>(std::ceil(p * 1.4))));
  }
  if (fail < 0) {
    out.capacity = pass;
    out.saturated = true;
    return out;
  }
  while (fail - pass > std::max<int64_t>(1, static_cast<int64_t>(s.precision * pass))) {
    const int64_t mid = pass + (fail - pass) / 2;
    (passes(mid) ? pass : fail) = mid;
  }
  out.capacity = pass;
  return out;
}

struct Stats {
  double mean = 0, lo = 0, hi = 0;
  bool saturated = false;
  std::vector<int64_t> per_seed;
};

Stats summarise(const std::vector<Search>& runs) {
  Stats st;
  st.lo = INFINITY;
  st.hi = 0;
  for (const Search& r : runs) {
    st.per_seed.push_back(r.capacity);
    st.mean += static_cast<double>(r.capacity) / static_cast<double>(runs.size());
    st.lo = std::min(st.lo, static_cast<double>(r.capacity));
    st.hi = std::max(st.hi, static_cast<double>(r.capacity));
    st.saturated |= r.saturated;
  }
  return st;
}

std::string show(const Stats& st) {
  return fmt::format("{}{:.1f} ({:.0f}-{:.0f})", st.saturated ? ">=" : "", st.mean, st.lo, st.hi);
}

// Pipes a gnuplot script; pngcairo may be missing from a minimal gnuplot, png is always there.
bool run_gnuplot(std::string script) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    FILE* pipe = ::popen("gnuplot 2>/dev/null", "w");
    if (pipe == nullptr) return false;
    std::fwrite(script.data(), 1, script.size(), pipe);
    if (::pclose(pipe) == 0) return true;
    const size_t at = script.find("pngcairo");
    if (at == std::string::npos) return false;
    script.replace(at, 8, "png");
  }
  return false;
}

std::string plot_script(const nlohmann::json& results, const std::string& png) {
  std::string script = fmt::format(
      "set terminal pngcairo size 1200,520 noenhanced\nset output '{}'\n"
      "set multiplot layout 1,2\nset logscale xy\nset grid\nset key bottom right font ',8'\n"
      "set xrange [6:1500]\nset yrange [1:200000]\n"
      "set xlabel 'N (neurons)'\nset ylabel 'patterns stored (<= 1% bit errors)'\n",
      png);
  for (const char* criterion : {"clean", "noisy"}) {
    script += fmt::format("set title 'from {} cues (dashed: theory)'\n",
                          std::string(criterion) == "clean" ? "stored" : "10%-noisy");
    std::string plot = "plot ", data;
    int index = 1;
    for (const auto& model : results["models"]) {
      if (plot.size() > 5) plot += ", ";
      plot += fmt::format("'-' using 1:2 with linespoints lw 2 lc {} title '{}'", index,
                          model["label"].get<std::string>());
      std::string theory;
      for (const auto& row : model["results"]) {
        if (!row[criterion]["saturated"].get<bool>()) {
          data +=
              fmt::format("{} {}\n", row["n"].get<int64_t>(), row[criterion]["mean"].get<double>());
        }
        theory += fmt::format("{} {}\n", row["n"].get<int64_t>(),
                              row[std::string("theory_") + criterion].get<double>());
      }
      data += "e\n";
      if (model["draw_theory"].get<bool>()) {
        plot += fmt::format(", '-' using 1:2 with lines dt 2 lc {} notitle", index);
        data += theory + "e\n";
      }
      ++index;
    }
    script += plot + "\n" + data;
  }
  return script + "unset multiplot\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Measure the storage capacity of the associative memories.", "basin-capacity"};
  Settings s;
  std::string out = "capacity", only;
  bool quick = false;
  int threads = 1;
  app.add_option("--out,-o", out, "output folder for capacity.json and capacity.png");
  app.add_option("--seeds", s.seeds, "pattern sets per (model, N)")->check(CLI::Range(1, 100));
  app.add_option("--probes", s.probes, "stored patterns tried as cues per evaluation")
      ->check(CLI::Range(1, 100000));
  app.add_option("--noise", s.noise, "fraction of bits flipped in a noisy cue")
      ->check(CLI::Range(0.0, 0.5));
  app.add_option("--threshold", s.threshold, "largest bit error rate counted as retrieval")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-patterns", s.max_patterns, "largest P tried")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  app.add_option("--beta", s.beta, "β of the log-sum-exp Dense AM and the modern network")
      ->check(CLI::PositiveNumber);
  app.add_option("--models", only, "comma-separated subset of the models (default: all)");
  app.add_flag("--quick", quick, "two small sizes per model (a smoke test)");
  app.add_option("--threads", threads,
                 "OpenMP threads (0: OpenMP's default); each retrieval is small, so one thread "
                 "wastes nothing, and more only pay on an otherwise idle machine")
      ->check(CLI::Range(0, 1024));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "basin-capacity: error: " << e.what() << '\n';
    return 2;
  }

  if (threads > 0) omp_set_num_threads(threads);
  std::vector<Model> models = make_models(s, quick);
  if (!only.empty()) {
    std::vector<Model> chosen;
    std::stringstream list(only);
    for (std::string name; std::getline(list, name, ',');) {
      auto it = std::find_if(models.begin(), models.end(),
                             [&](const Model& m) { return m.name == name; });
      if (it == models.end()) {
        std::string names;
        for (const Model& m : models) names += (names.empty() ? "" : ", ") + m.name;
        std::cerr << "basin-capacity: error: unknown model '" << name << "' (one of " << names
                  << ")\n";
        return 2;
      }
      chosen.push_back(*it);
    }
    models = chosen;
  }

  const auto start = std::chrono::steady_clock::now();
  nlohmann::json results;
  results["settings"] = {{"seeds", s.seeds},
                         {"probes", s.probes},
                         {"noise", s.noise},
                         {"threshold", s.threshold},
                         {"max_patterns", s.max_patterns},
                         {"beta", s.beta},
                         {"precision", s.precision},
                         {"threads", threads},
                         {"update", "asynchronous, random order"}};
  results["models"] = nlohmann::json::array();
  std::printf("%-24s %5s  %-24s %-24s %s\n", "model", "N", "clean P mean (min-max)",
              "noisy P mean (min-max)", "theory");
  try {
    for (const Model& model : models) {
      const auto model_start = std::chrono::steady_clock::now();
      nlohmann::json entry = {{"name", model.name},
                              {"label", model.label},
                              {"theory", model.theory},
                              {"draw_theory", model.draw_theory},
                              {"results", nlohmann::json::array()}};
      for (const int64_t n : model.sizes) {
        // More than 2^N patterns can only repeat; P ≤ 2^N, and ≤ max_patterns.
        const int64_t cap =
            n < 40 ? std::min<int64_t>(s.max_patterns, int64_t{1} << n) : s.max_patterns;
        std::vector<Search> clean, noisy;
        for (int seed = 0; seed < s.seeds; ++seed) {
          Bank bank(n, s.probes, s.noise, static_cast<uint64_t>(1000 * n + seed));
          auto error = [&](int64_t p, bool noisy) {
            Generator gen(static_cast<uint64_t>(seed));
            const auto [targets, cues] = make_cues(bank, p, s.probes, noisy);
            const Tensor got = model.retrieve(bank.patterns(p), cues, gen);
            return mean(not_equal(got, targets).astype(Dtype::f64)).item<double>();
          };
          clean.push_back(find_capacity([&](int64_t p) { return error(p, false); }, cap, s));
          noisy.push_back(find_capacity([&](int64_t p) { return error(p, true); }, cap, s));
        }
        const Stats c = summarise(clean), z = summarise(noisy);
        const double tc = model.theory_clean(n), tz = model.theory_noisy(n);
        std::printf("%-24s %5ld  %-24s %-24s %.1f / %.1f\n", model.label.c_str(),
                    static_cast<long>(n), show(c).c_str(), show(z).c_str(), tc, tz);
        std::fflush(stdout);
        auto stats_json = [](const Stats& st) {
          return nlohmann::json{{"mean", st.mean},
                                {"min", st.lo},
                                {"max", st.hi},
                                {"per_seed", st.per_seed},
                                {"saturated", st.saturated}};
        };
        entry["results"].push_back({{"n", n},
                                    {"max_patterns_tried", cap},
                                    {"clean", stats_json(c)},
                                    {"noisy", stats_json(z)},
                                    {"theory_clean", tc},
                                    {"theory_noisy", tz}});
      }
      entry["seconds"] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - model_start).count();
      results["models"].push_back(entry);
    }
  } catch (const Error& e) {
    std::cerr << "basin-capacity: error: " << e.what() << '\n';
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  results["seconds"] = seconds;

  fs::create_directories(out);
  const fs::path json_path = fs::path(out) / "capacity.json";
  std::ofstream(json_path) << results.dump(2) << '\n';
  std::printf("\n%.1f s; wrote %s\n", seconds, json_path.string().c_str());
  const fs::path png = fs::path(out) / "capacity.png";
  if (!train::gnuplot_available()) {
    std::printf("gnuplot not found: no plot (install gnuplot-nox for %s)\n", png.string().c_str());
  } else if (run_gnuplot(plot_script(results, png.string()))) {
    std::printf("wrote %s\n", png.string().c_str());
  } else {
    std::printf("gnuplot failed: no plot\n");
  }
  return 0;
}
