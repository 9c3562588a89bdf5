// basin::Config, a TOML configuration read with defaults: every key the program reads is recorded,
// so an unknown key is an error without a separate schema, and the resolved tree can be saved.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace basin {

/// The value types Config::get reads.
template <class T>
concept ConfigValue = std::same_as<T, bool> || std::same_as<T, int64_t> || std::same_as<T, int> ||
    std::same_as<T, double> || std::same_as<T, std::string> ||
    std::same_as<T, std::vector<int64_t>> || std::same_as<T, std::vector<double>> ||
    std::same_as<T, std::vector<std::string>>;

/// A TOML tree and the set of keys read from it. A Config is a view of one table in the tree (the
/// root, or a section); copies and sections share the tree. Keys may be dotted ("optim.lr"), always
/// relative to the view. Every error is a basin::Error starting with "[config]".
class Config {
 public:
  /// An empty root table.
  Config();

  /// Parses TOML text. A syntax error reads "[config] <source>:<line>:<col>: <description>".
  static Config parse(std::string_view toml_text, std::string_view source = "<string>");
  /// Reads and parses a TOML file; a file that cannot be read is "[config] cannot read <path>:
  /// ...".
  static Config load(const std::string& path);

  /// Applies one override "a.b.c=value": value is a TOML literal (3e-4, 12, true, "s", [1, 2],
  /// {x = 1}); a value that is not valid TOML but is a plain word or path (letters, digits and
  /// _-./:) is taken as a string, so --set data.root=../shared/data/mnist works; anything else is
  /// "[config] --set a.b: cannot parse value '...'". Creates intermediate tables; replacing a table
  /// by a non-table or a non-table by a table is an error naming the key (a table by a table
  /// replaces it whole).
  void set(std::string_view assignment);
  /// As set(), with the key and the value given apart.
  void set_value(std::string_view dotted_key, std::string_view toml_literal);

  /// Reads `key` and marks it used; a missing key is inserted with `fallback` so that the resolved
  /// config shows every default. A double also accepts an integer value. A value of the wrong type
  /// is "[config] model.hidden: expected an integer, got a string ("abc")"; an int out of range
  /// is reported the same way.
  template <ConfigValue T>
  T get(std::string_view key, const T& fallback);
  /// As above, for a string default given as a literal: get("activation", "relu").
  std::string get(std::string_view key, const char* fallback);
  /// Reads a required key: "[config] missing key model.hidden" when it is absent.
  template <ConfigValue T>
  T get(std::string_view key);
  /// A string that must be one of `choices`:
  /// "[config] model.activation: 'rleu' is not one of relu, gelu, tanh".
  std::string get_choice(std::string_view key, const std::string& fallback,
                         const std::vector<std::string>& choices);
  /// Whether `key` exists (of any type); does not mark it used.
  bool has(std::string_view key) const;

  /// The table at `key` (created empty if missing), sharing the tree; marks it visited, so an empty
  /// one is not reported as unknown. An existing value that is not a table is an error naming it.
  Config section(std::string_view key);

  /// Full dotted names (from the root) of the keys below this view that were never read, sorted:
  /// unread values, and tables never visited that are empty.
  std::vector<std::string> unused_keys() const;
  /// Throws for the first unused key: "[config] unknown key 'model.hiden' (did you mean
  /// 'model.hidden'?)". The suggestion is a used key at the same level within edit distance 2
  /// (a transposition counts 1) and at most half the unknown name's length; for a table never
  /// visited, the level is the table's ("modle.hidden" → 'model.hidden'). When none is close the
  /// level's used keys are listed. The message also counts and names further unknown keys.
  void check_all_used() const;

  /// The dotted path of this view from the root: "" for the root, "model" for a section.
  std::string prefix() const;
  /// The whole tree (from the root) as TOML, keys sorted; parse(to_toml()) gives the same tree.
  std::string to_toml() const;
  /// The whole tree (from the root) as JSON, keys sorted.
  std::string to_json() const;
  /// Whether this view's table has no keys.
  bool empty() const;

 private:
  struct State;
  Config(std::shared_ptr<State> state, std::string prefix);

  std::shared_ptr<State> state_;
  std::string prefix_;
};

}  // namespace basin
