// basin::Config: a toml++ tree behind a pimpl, the set of keys read from it, overrides and reports.
// toml++ prints floats with 17 digits unless charconv is on, which it leaves off for GCC; libstdc++
// 12 has floating-point to_chars/from_chars, so turn it on for the shortest exact form (3e-04).
#define TOML_FLOAT_CHARCONV 1

#include "core/config.h"

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>

#include <fmt/ranges.h>

#include "core/error.h"

namespace basin {

struct Config::State {
  toml::table root;
  // Full dotted names of the values read and the tables visited (a read also visits its tables).
  std::set<std::string> used;
};

namespace {

constexpr size_t kMaxShownValue = 60;  // longer values are cut short in error messages
constexpr size_t kMaxListedKeys = 10;  // further unknown keys named in check_all_used's message

template <class T>
constexpr bool is_vector = false;
template <class E>
constexpr bool is_vector<std::vector<E>> = true;

std::string path_join(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string join_parts(const std::vector<std::string>& parts, size_t count) {
  return fmt::format("{}", fmt::join(parts.begin(), parts.begin() + count, "."));
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = path.find('.', start);
    parts.emplace_back(path.substr(start, dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

/// The parts of a dotted key given to the API, none of them empty.
std::vector<std::string> split_key(std::string_view full) {
  std::vector<std::string> parts = split_path(full);
  for (const auto& p : parts) check(!p.empty(), "[config] invalid key '{}'", full);
  return parts;
}

std::string_view trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

/// "a string (\"abc\")": the type and, but for tables, the value as TOML.
std::string describe(const toml::node& n) {
  if (n.is_table()) return type_name(n);
  std::ostringstream os;
  os << toml::toml_formatter(n, toml::format_flags::allow_unicode_strings);
  std::string shown = os.str();
  if (shown.size() > kMaxShownValue) shown = shown.substr(0, kMaxShownValue - 3) + "...";
  return fmt::format("{} ({})", type_name(n), shown);
}

[[noreturn]] void wrong_type(const std::string& name, std::string_view expected,
                             const toml::node& n) {
  fail("[config] {}: expected {}, got {}", name, expected, describe(n));
}

template <class T>
T convert(const toml::node& n, const std::string& name) {
  if constexpr (std::is_same_v<T, bool>) {
    if (const auto* v = n.as_boolean()) return v->get();
    wrong_type(name, "a boolean", n);
  } else if constexpr (std::is_same_v<T, int64_t>) {
    if (const auto* v = n.as_integer()) return v->get();
    wrong_type(name, "an integer", n);
  } else if constexpr (std::is_same_v<T, int>) {
    const int64_t v = convert<int64_t>(n, name);
    using Limits = std::numeric_limits<int>;
    check(v >= Limits::min() && v <= Limits::max(),
          "[config] {}: expected an integer in [{}, {}], got {}", name, Limits::min(),
          Limits::max(), v);
    return static_cast<int>(v);
  } else if constexpr (std::is_same_v<T, double>) {
    if (const auto* v = n.as_floating_point()) return v->get();
    if (const auto* v = n.as_integer()) return static_cast<double>(v->get());
    wrong_type(name, "a number", n);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (const auto* v = n.as_string()) return v->get();
    wrong_type(name, "a string", n);
  } else {
    static_assert(is_vector<T>);
    const toml::array* array = n.as_array();
    if (!array) wrong_type(name, "an array", n);
    T out;
    out.reserve(array->size());
    for (size_t i = 0; i < array->size(); ++i) {
      out.push_back(
          convert<typename T::value_type>(*array->get(i), fmt::format("{}[{}]", name, i)));
    }
    return out;
  }
}

/// The value a fallback is stored as.
template <class T>
auto stored(const T& v) {
  if constexpr (std::is_same_v<T, int>) {
    return int64_t{v};
  } else if constexpr (is_vector<T>) {
    toml::array array;
    for (const auto& e : v) array.push_back(e);
    return array;
  } else {
    return v;
  }
}

/// The node at `parts` below root, or nullptr when any part is missing or not a table.
const toml::node* node_at(const toml::table& root, const std::vector<std::string>& parts) {
  const toml::node* n = &root;
  for (const auto& p : parts) {
    const toml::table* t = n->as_table();
    if (!t || !(n = t->get(p))) return nullptr;
  }
  return n;
}

/// The table at the dotted `path` below root ("" is root itself), or nullptr.
const toml::table* table_at(const toml::table& root, const std::string& path) {
  if (path.empty()) return &root;
  const toml::node* n = node_at(root, split_path(path));
  return n ? n->as_table() : nullptr;
}

/// The table at parts[0, count) below root. Missing tables are created when `create`, else the
/// result is nullptr; a value on the way that is not a table is an error naming it.
toml::table* tables_to(toml::table& root, const std::vector<std::string>& parts, size_t count,
                       bool create) {
  toml::table* t = &root;
  for (size_t i = 0; i < count; ++i) {
    toml::node* n = t->get(parts[i]);
    if (!n) {
      if (!create) return nullptr;
      n = &t->insert(parts[i], toml::table{}).first->second;
    }
    if (!n->is_table()) {
      fail("[config] {}: expected a table, got {}", join_parts(parts, i + 1), describe(*n));
    }
    t = n->as_table();
  }
  return t;
}

/// Marks `full` and every table above it as used.
void mark_used(std::set<std::string>& used, const std::string& full) {
  for (size_t dot = full.find('.'); dot != std::string::npos; dot = full.find('.', dot + 1)) {
    used.insert(full.substr(0, dot));
  }
  used.insert(full);
}

/// Tables written inline ({x = 1}) become ordinary ones, so that the resolved config prints them
/// as sections and defaults added to them stay readable. Tables inside arrays are left alone.
void expand_inline_tables(toml::table& t) {
  for (auto&& [key, n] : t) {
    if (toml::table* sub = n.as_table()) {
      sub->is_inline(false);
      expand_inline_tables(*sub);
    }
  }
}

bool is_plain_word(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_-./:", c) != nullptr;
  });
}

/// Edit distance with adjacent transpositions (optimal string alignment).
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

/// The candidate closest to `name` within edit distance 2 (and at most half its length, so that
/// "lr" is not taken for "wd"); the first in order on ties.
std::optional<std::string> closest(const std::string& name,
                                   const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_distance = std::min<size_t>(2, name.size() / 2) + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(name, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

void collect_unused(const toml::table& t, const std::string& path,
                    const std::set<std::string>& used, std::vector<std::string>& out) {
  for (auto&& [key, n] : t) {
    std::string full = path_join(path, key.str());
    const toml::table* sub = n.as_table();
    if (sub && !sub->empty()) {
      collect_unused(*sub, full, used, out);
    } else if (!used.contains(full)) {
      out.push_back(std::move(full));
    }
  }
}

struct CloseFile {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

Config::Config() : state_(std::make_shared<State>()) {}

Config::Config(std::shared_ptr<State> state, std::string prefix)
    : state_(std::move(state)), prefix_(std::move(prefix)) {}

Config Config::parse(std::string_view toml_text, std::string_view source) {
  Config config;
  try {
    config.state_->root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    fail("[config] {}:{}:{}: {}", source, e.source().begin.line, e.source().begin.column,
         e.description());
  }
  expand_inline_tables(config.state_->root);
  return config;
}

Config Config::load(const std::string& path) {
  std::unique_ptr<std::FILE, CloseFile> file(std::fopen(path.c_str(), "rb"));
  if (!file) fail("[config] cannot read {}: {}", path, std::strerror(errno));
  std::string text;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) fail("[config] cannot read {}: {}", path, std::strerror(errno));
  return parse(text, path);
}

void Config::set(std::string_view assignment) {
  const size_t eq = assignment.find('=');
  check(eq != std::string_view::npos, "[config] --set '{}': expected key=value", assignment);
  set_value(trim(assignment.substr(0, eq)), trim(assignment.substr(eq + 1)));
}

void Config::set_value(std::string_view dotted_key, std::string_view toml_literal) {
  const std::string full = path_join(prefix_, dotted_key);
  const auto parts = split_key(full);
  // Parsed as the value of a one-key document; anything that adds keys or tables is rejected.
  toml::table parsed;
  try {
    parsed = toml::parse(fmt::format("v = {}", toml_literal), std::string_view("--set"));
  } catch (const toml::parse_error&) {
    parsed.clear();
  }
  if (parsed.size() != 1 || !parsed.contains("v")) {
    check(is_plain_word(toml_literal), "[config] --set {}: cannot parse value '{}'", full,
          toml_literal);
    parsed.clear();
    parsed.insert("v", std::string(toml_literal));
  }
  expand_inline_tables(parsed);
  toml::node& value = *parsed.get("v");
  toml::table& parent = *tables_to(state_->root, parts, parts.size() - 1, true);
  if (const toml::node* old = parent.get(parts.back());
      old && old->is_table() != value.is_table()) {
    fail("[config] --set {}: cannot replace {} by {}", full, describe(*old), describe(value));
  }
  parent.insert_or_assign(parts.back(), std::move(value));
}

template <ConfigValue T>
T Config::get(std::string_view key, const T& fallback) {
  const std::string full = path_join(prefix_, key);
  const auto parts = split_key(full);
  toml::table& parent = *tables_to(state_->root, parts, parts.size() - 1, true);
  if (const toml::node* n = parent.get(parts.back())) {
    T value = convert<T>(*n, full);
    mark_used(state_->used, full);
    return value;
  }
  parent.insert(parts.back(), stored(fallback));
  mark_used(state_->used, full);
  return fallback;
}

template <ConfigValue T>
T Config::get(std::string_view key) {
  const std::string full = path_join(prefix_, key);
  const auto parts = split_key(full);
  const toml::table* parent = tables_to(state_->root, parts, parts.size() - 1, false);
  const toml::node* n = parent ? parent->get(parts.back()) : nullptr;
  check(n != nullptr, "[config] missing key {}", full);
  T value = convert<T>(*n, full);
  mark_used(state_->used, full);
  return value;
}

#define BASIN_CONFIG_GET(T)                              \
  template T Config::get<T>(std::string_view, const T&); \
  template T Config::get<T>(std::string_view);
BASIN_CONFIG_GET(bool)
BASIN_CONFIG_GET(int64_t)
BASIN_CONFIG_GET(int)
BASIN_CONFIG_GET(double)
BASIN_CONFIG_GET(std::string)
BASIN_CONFIG_GET(std::vector<int64_t>)
BASIN_CONFIG_GET(std::vector<double>)
BASIN_CONFIG_GET(std::vector<std::string>)
#undef BASIN_CONFIG_GET

std::string Config::get(std::string_view key, const char* fallback) {
  return get<std::string>(key, std::string(fallback));
}

std::string Config::get_choice(std::string_view key, const std::string& fallback,
                               const std::vector<std::string>& choices) {
  std::string value = get<std::string>(key, fallback);
  if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
    fail("[config] {}: '{}' is not one of {}", path_join(prefix_, key), value,
         fmt::join(choices, ", "));
  }
  return value;
}

bool Config::has(std::string_view key) const {
  return node_at(state_->root, split_key(path_join(prefix_, key))) != nullptr;
}

Config Config::section(std::string_view key) {
  std::string full = path_join(prefix_, key);
  const auto parts = split_key(full);
  tables_to(state_->root, parts, parts.size(), true);
  mark_used(state_->used, full);
  return Config(state_, std::move(full));
}

std::vector<std::string> Config::unused_keys() const {
  std::vector<std::string> out;
  if (const toml::table* t = table_at(state_->root, prefix_)) {
    collect_unused(*t, prefix_, state_->used, out);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Config::check_all_used() const {
  const std::vector<std::string> unused = unused_keys();
  if (unused.empty()) return;
  const std::string& first = unused.front();
  std::vector<std::string> parts = split_path(first);
  // The outermost part of the key that nobody read: candidates are the read keys beside it.
  size_t depth = 0;
  while (depth + 1 < parts.size() && state_->used.contains(join_parts(parts, depth + 1))) ++depth;
  const std::string level = join_parts(parts, depth);
  std::vector<std::string> known;
  if (const toml::table* t = table_at(state_->root, level)) {
    for (auto&& [key, n] : *t) {
      if (state_->used.contains(path_join(level, key.str()))) known.emplace_back(key.str());
    }
  }
  std::string hint;
  if (const auto suggestion = closest(parts[depth], known)) {
    parts[depth] = *suggestion;
    hint = fmt::format(" (did you mean '{}'?)", join_parts(parts, parts.size()));
  } else if (!known.empty()) {
    hint = fmt::format(" (known keys {}: {})", level.empty() ? "at the top level" : "in " + level,
                       fmt::join(known, ", "));
  }
  std::string more;
  if (const size_t n_more = unused.size() - 1; n_more > 0) {
    const size_t listed = std::min(n_more, kMaxListedKeys);
    more = fmt::format("; {} more unknown key{}: {}{}", n_more, n_more > 1 ? "s" : "",
                       fmt::join(unused.begin() + 1, unused.begin() + 1 + listed, ", "),
                       n_more > listed ? ", ..." : "");
  }
  fail("[config] unknown key '{}'{}{}", first, hint, more);
}

std::string Config::prefix() const { return prefix_; }

std::string Config::to_toml() const {
  std::ostringstream os;
  os << toml::toml_formatter(state_->root, toml::format_flags::allow_unicode_strings);
  std::string text = os.str();
  if (!text.empty()) text += '\n';
  return text;
}

std::string Config::to_json() const {
  std::ostringstream os;
  os << toml::json_formatter(state_->root);
  return os.str() + '\n';
}

bool Config::empty() const {
  const toml::table* t = table_at(state_->root, prefix_);
  return !t || t->empty();
}

}  // namespace basin
