#!/usr/bin/env bash
# Installs the library from a build folder into a temporary prefix and builds and runs a separate
# consumer project against it with find_package(basin CONFIG).
set -euo pipefail
build=${1:-build}
prefix=$(mktemp -d)
consumer=$(mktemp -d)
trap 'rm -rf "$prefix" "$consumer"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
cat >"$consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(basin_consumer LANGUAGES CXX)
find_package(basin CONFIG REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE basin::basin)
CMAKE
cat >"$consumer/main.cpp" <<'CPP'
#include <basin/basin.h>

#include <cmath>
#include <cstdio>

int main() {
  using namespace basin;
  const Tensor x = linspace(-1, 1, 5, Dtype::f64);
  const Tensor g = grad([](const Tensor& v) { return sum(exp(v)); })(x);
  const double err = sum(abs(g - exp(x))).item<double>();
  std::printf("consumer: grad of sum(exp(x)) differs from exp(x) by %g\n", err);
  return err < 1e-12 ? 0 : 1;
}
CPP
cmake -S "$consumer" -B "$consumer/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$consumer/build" >/dev/null
"$consumer/build/consumer"
