// Reads the PyTorch fixtures of the nn tests (tests/fixtures/*.txt): one tensor per line,
// "name ndim dims... values..." in float64, '#' lines are comments.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace basin::testing {

/// The tensors of tests/fixtures/<file> by name (float64, on the CPU); parsed once per file.
inline const std::map<std::string, Tensor>& nn_fixture(const std::string& file) {
  static std::map<std::string, std::map<std::string, Tensor>> cache;
  auto it = cache.find(file);
  if (it != cache.end()) return it->second;
  const auto path = std::filesystem::path(__FILE__).parent_path() / "../../fixtures" / file;
  std::ifstream in(path);
  if (!in) fail("[nn_fixture] cannot open {}", path.string());
  std::map<std::string, Tensor> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    std::string name;
    int ndim = 0;
    s >> name >> ndim;
    Shape shape(static_cast<size_t>(ndim));
    for (auto& d : shape) s >> d;
    std::vector<double> values(static_cast<size_t>(numel(shape)));
    for (double& v : values) s >> v;
    if (!s) fail("[nn_fixture] bad line for '{}' in {}", name, path.string());
    out[name] = from_vector(values, shape);
  }
  return cache[file] = std::move(out);
}

/// One tensor of a fixture file; a missing name is an error naming it.
inline const Tensor& nn_fixture(const std::string& file, const std::string& name) {
  const auto& all = nn_fixture(file);
  auto it = all.find(name);
  if (it == all.end()) fail("[nn_fixture] no '{}' in {}", name, file);
  return it->second;
}

/// The tensors of a fixture file whose names start with `prefix`, with the prefix removed (e.g.
/// the "init." weights, to load with Module::load_state_dict).
inline std::map<std::string, Tensor> nn_fixture_prefixed(const std::string& file,
                                                         const std::string& prefix) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : nn_fixture(file)) {
    if (name.starts_with(prefix)) out[name.substr(prefix.size())] = t;
  }
  return out;
}

}  // namespace basin::testing
