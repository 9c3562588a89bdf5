// Mask specs (parsing, printing) and mask drawing: scatter, blocks and mixtures from Philox
// streams.
#include "data/masking.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/ops/creation.h"
#include "core/random.h"

namespace basin::data {
namespace {

// --- parsing ---------------------------------------------------------------------------------

struct Parser {
  const std::string& text;  // the whole spec, for messages

  template <class... Args>
  [[noreturn]] void bad(fmt::format_string<Args...> format, Args&&... args) const {
    fail("[parse_mask_spec] '{}': {}", text, fmt::format(format, std::forward<Args>(args)...));
  }

  MaskAmount amount(const std::string& s) const {
    MaskAmount a;
    if (s.empty())
      bad("an amount is empty (expected a count such as 32 or a fraction such as 0.5)");
    const bool percent = s.back() == '%';
    const std::string number = percent ? s.substr(0, s.size() - 1) : s;
    if (percent || number.find_first_of(".eE") != std::string::npos) {
      char* end = nullptr;
      const double v = std::strtod(number.c_str(), &end);
      if (number.empty() || end != number.c_str() + number.size() || !std::isfinite(v)) {
        bad("'{}' is not a number", s);
      }
      a.is_ratio = true;
      a.ratio = percent ? v / 100.0 : v;
      if (!(a.ratio >= 0.0 && a.ratio <= 1.0)) {
        bad("the fraction '{}' must lie in [0, 1] (write a count without a decimal point)", s);
      }
      return a;
    }
    if (number.find_first_not_of("0123456789") != std::string::npos) {
      bad("'{}' is not a count (a non-negative integer) or a fraction (such as 0.5 or 50%)", s);
    }
    if (number.size() > 15) bad("the count '{}' is too large", s);
    a.count = std::stoll(number);
    return a;
  }

  MaskSpec simple(const std::string& spec) const {
    const size_t colon = spec.find(':');
    const std::string name = spec.substr(0, colon);
    if (name == "mixture") bad("a mixture cannot hold another mixture");
    if (name != "scatter" && name != "multi_scatter" && name != "block") {
      bad("unknown strategy '{}' (expected scatter, multi_scatter, block or mixture)", name);
    }
    if (colon == std::string::npos) bad("'{}' needs its amounts, as in '{}:0.5'", name, name);
    std::string args = spec.substr(colon + 1);
    MaskSpec out;
    out.strategy = name == "block" ? MaskSpec::Strategy::block : MaskSpec::Strategy::scatter;
    if (const size_t x = args.find('x'); x != std::string::npos) {
      if (name != "block") bad("only block takes a number of blocks ('x{}')", args.substr(x + 1));
      const std::string k = args.substr(x + 1);
      if (k.empty() || k.size() > 9 || k.find_first_not_of("0123456789") != std::string::npos ||
          std::stoll(k) < 1) {
        bad("the number of blocks '{}' must be a positive integer", k);
      }
      out.blocks = std::stoll(k);
      args = args.substr(0, x);
    }
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t comma; (comma = args.find(',', start)) != std::string::npos; start = comma + 1) {
      parts.push_back(args.substr(start, comma - start));
    }
    parts.push_back(args.substr(start));
    if (parts.size() > 2) {
      bad("{} takes at most two amounts (replaced, kept but scored), got {}", name, parts.size());
    }
    if (name == "multi_scatter" && parts.size() != 2) {
      bad("multi_scatter takes two amounts (replaced, kept but scored), as in multi_scatter:90,10");
    }
    out.replaced = amount(parts[0]);
    if (parts.size() == 2) out.kept = amount(parts[1]);
    return out;
  }

  MaskSpec mixture(const std::string& args) const {
    MaskSpec out;
    out.strategy = MaskSpec::Strategy::mixture;
    if (args.empty())
      bad("a mixture needs components, as in 'mixture:scatter:0.5@0.5,block:0.5@0.5'");
    size_t pos = 0;
    double total = 0.0;
    while (pos < args.size()) {
      const size_t at = args.find('@', pos);
      if (at == std::string::npos) {
        bad("mixture component '{}' needs a probability, as in '{}@0.5'", args.substr(pos),
            args.substr(pos));
      }
      out.components.push_back(simple(args.substr(pos, at - pos)));
      size_t end = args.find(',', at);
      if (end == std::string::npos) end = args.size();
      const std::string p = args.substr(at + 1, end - at - 1);
      char* stop = nullptr;
      const double prob = std::strtod(p.c_str(), &stop);
      if (p.empty() || stop != p.c_str() + p.size() || !(prob > 0.0 && prob <= 1.0)) {
        bad("the probability '{}' of component '{}' must be a number in (0, 1]", p,
            args.substr(pos, at - pos));
      }
      out.probabilities.push_back(prob);
      total += prob;
      pos = end + 1;
    }
    if (std::abs(total - 1.0) > 1e-6) bad("the mixture's probabilities add up to {}, not 1", total);
    return out;
  }
};

std::string amount_str(const MaskAmount& a) {
  if (!a.is_ratio) return std::to_string(a.count);
  std::string s = fmt::format("{}", a.ratio);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// --- drawing ---------------------------------------------------------------------------------

// Checks that every strategy `spec` can draw fits the grid.
void check_fits(const MaskSpec& spec, int64_t gh, int64_t gw, const char* who) {
  if (spec.strategy == MaskSpec::Strategy::mixture) {
    for (const MaskSpec& c : spec.components) check_fits(c, gh, gw, who);
    return;
  }
  const int64_t n = gh * gw;
  const int64_t a = spec.replaced.resolve(n), b = spec.kept.resolve(n);
  if (a + b > n) {
    fail("[{}] '{}' asks for {} patches but the {} × {} grid has {}", who, to_string(spec), a + b,
         gh, gw, n);
  }
}

// Marks `total` cells of `occupied` (gh × gw, row-major) in `blocks` blocks; see MaskSpec.
void draw_blocks(int64_t total, int64_t blocks, int64_t gh, int64_t gw, PhiloxStream& rng,
                 std::vector<uint8_t>& occupied) {
  const double log3 = std::log(3.0);
  for (int64_t k = 0; k < blocks; ++k) {
    const int64_t a = total / blocks + (k < total % blocks ? 1 : 0);
    if (a == 0) continue;
    const double aspect = std::exp((2.0 * rng.uniform_double() - 1.0) * log3);  // height / width
    const int64_t h = std::clamp<int64_t>(std::llround(std::sqrt(static_cast<double>(a) * aspect)),
                                          std::max<int64_t>(1, (a + gw - 1) / gw), std::min(gh, a));
    const int64_t w = (a + h - 1) / h;
    const int64_t rows = (a + w - 1) / w;
    const int64_t last = a - (rows - 1) * w;  // cells in the partly filled row
    const bool partial_on_top = rng.uniform_double() < 0.5,
               partial_on_right = rng.uniform_double() < 0.5;
    const auto inside = [&](int64_t r, int64_t c) {  // (r, c) relative to the block
      const int64_t partial_row = partial_on_top ? 0 : rows - 1;
      if (r != partial_row) return true;
      return partial_on_right ? c >= w - last : c < last;
    };
    int64_t top = 0, left = 0;
    for (int attempt = 0; attempt < 32; ++attempt) {
      top = rng.below_double(gh - rows + 1);
      left = rng.below_double(gw - w + 1);
      bool overlaps = false;
      for (int64_t r = 0; r < rows && !overlaps; ++r)
        for (int64_t c = 0; c < w && !overlaps; ++c)
          overlaps = inside(r, c) && occupied[static_cast<size_t>((top + r) * gw + left + c)];
      if (!overlaps) break;
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < w; ++c)
        if (inside(r, c)) occupied[static_cast<size_t>((top + r) * gw + left + c)] = 1;
  }
  // Overlapping blocks cover fewer cells than asked: grow the region into its neighbours.
  int64_t covered = std::count(occupied.begin(), occupied.end(), uint8_t{1});
  std::vector<int64_t> frontier;
  const auto push_neighbours = [&](int64_t i) {
    const int64_t r = i / gw, c = i % gw;
    if (r > 0) frontier.push_back(i - gw);
    if (r + 1 < gh) frontier.push_back(i + gw);
    if (c > 0) frontier.push_back(i - 1);
    if (c + 1 < gw) frontier.push_back(i + 1);
  };
  if (covered < total) {
    for (int64_t i = 0; i < gh * gw; ++i)
      if (occupied[static_cast<size_t>(i)]) push_neighbours(i);
  }
  while (covered < total && !frontier.empty()) {
    const auto pick = static_cast<size_t>(rng.below_double(static_cast<int64_t>(frontier.size())));
    const int64_t i = frontier[pick];
    frontier[pick] = frontier.back();
    frontier.pop_back();
    if (occupied[static_cast<size_t>(i)]) continue;
    occupied[static_cast<size_t>(i)] = 1;
    ++covered;
    push_neighbours(i);
  }
}

// Writes the mask of one image into out[0 .. gh * gw).
void draw_mask(const MaskSpec& spec, int64_t gh, int64_t gw, PhiloxStream& rng, int64_t* out) {
  const MaskSpec* s = &spec;
  if (spec.strategy == MaskSpec::Strategy::mixture) {
    const double u = rng.uniform_double();
    double cumulative = 0.0;
    s = &spec.components.back();  // when rounding leaves u above the last sum
    for (size_t i = 0; i < spec.components.size(); ++i) {
      cumulative += spec.probabilities[i];
      if (u < cumulative) {
        s = &spec.components[i];
        break;
      }
    }
  }
  const int64_t n = gh * gw;
  const int64_t a = s->replaced.resolve(n), b = s->kept.resolve(n);
  std::fill(out, out + n, kMaskVisible);
  // The chosen cells; the first a are replaced, the next b kept but scored.
  std::vector<int64_t> cells;
  if (s->strategy == MaskSpec::Strategy::scatter) {
    cells.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) cells[static_cast<size_t>(i)] = i;
  } else {
    std::vector<uint8_t> occupied(static_cast<size_t>(n), 0);
    draw_blocks(a + b, s->blocks, gh, gw, rng, occupied);
    for (int64_t i = 0; i < n; ++i)
      if (occupied[static_cast<size_t>(i)]) cells.push_back(i);
  }
  // A partial Fisher–Yates shuffle picks a + b of the cells in random order.
  const auto m = static_cast<int64_t>(cells.size());
  for (int64_t i = 0; i < a + b && i < m; ++i) {
    std::swap(cells[static_cast<size_t>(i)],
              cells[static_cast<size_t>(i + rng.below_double(m - i))]);
    out[cells[static_cast<size_t>(i)]] = i < a ? kMaskReplaced : kMaskKeptScored;
  }
}

void check_grid(int64_t gh, int64_t gw, const char* who) {
  if (gh <= 0 || gw <= 0) fail("[{}] the patch grid must be positive, got {} × {}", who, gh, gw);
}

}  // namespace

int64_t MaskAmount::resolve(int64_t n) const {
  return is_ratio ? std::llround(ratio * static_cast<double>(n)) : count;
}

MaskSpec parse_mask_spec(const std::string& text) {
  std::string s;
  for (char c : text)
    if (c != ' ' && c != '\t') s += c;
  const Parser parser{text};
  if (s.empty()) parser.bad("the spec is empty (e.g. 'scatter:0.5' or 'multi_scatter:90,10')");
  if (s.rfind("mixture:", 0) == 0) return parser.mixture(s.substr(8));
  return parser.simple(s);
}

std::string to_string(const MaskSpec& spec) {
  const std::string kept =
      spec.kept == MaskAmount{} ? "" : fmt::format(",{}", amount_str(spec.kept));
  switch (spec.strategy) {
    case MaskSpec::Strategy::scatter:
      return fmt::format("{}:{}{}", kept.empty() ? "scatter" : "multi_scatter",
                         amount_str(spec.replaced), kept);
    case MaskSpec::Strategy::block:
      return fmt::format("block:{}{}{}", amount_str(spec.replaced), kept,
                         spec.blocks != 1 ? fmt::format("x{}", spec.blocks) : "");
    case MaskSpec::Strategy::mixture: {
      std::string s = "mixture:";
      for (size_t i = 0; i < spec.components.size(); ++i) {
        s += fmt::format("{}{}@{}", i > 0 ? "," : "", to_string(spec.components[i]),
                         spec.probabilities[i]);
      }
      return s;
    }
  }
  return "";
}

Tensor make_masks(const MaskSpec& spec, int64_t batch, int64_t gh, int64_t gw, Generator* gen) {
  check_grid(gh, gw, "make_masks");
  if (batch < 0) fail("[make_masks] batch must be non-negative, got {}", batch);
  check_fits(spec, gh, gw, "make_masks");
  Generator& g = gen != nullptr ? *gen : default_generator();
  const uint64_t first = g.reserve(static_cast<uint64_t>(batch));
  Tensor out = zeros({batch, gh * gw}, Dtype::i64);
  int64_t* p = out.data<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    PhiloxStream rng(g.seed(), first + static_cast<uint64_t>(b));
    draw_mask(spec, gh, gw, rng, p + b * gh * gw);
  }
  return out;
}

Tensor make_mask(const MaskSpec& spec, int64_t gh, int64_t gw, uint64_t seed, uint64_t index) {
  check_grid(gh, gw, "make_mask");
  check_fits(spec, gh, gw, "make_mask");
  Tensor out = zeros({gh * gw}, Dtype::i64);
  PhiloxStream rng(seed, index);
  draw_mask(spec, gh, gw, rng, out.data<int64_t>());
  return out;
}

}  // namespace basin::data
