# Entry points: `make test` builds and runs every test, `make demo` trains the default model,
# `make bench` runs the benchmarks. Dependencies are installed on first use (as root).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo bench sanitize format clean

all: build

deps:
	@bash tools/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The default model on built-in data: the image Energy Transformer on procedural images.
demo: build
	@rm -rf runs/et_demo
	@$(BUILD)/tools/basin-train --config configs/et_demo.toml --out runs/et_demo
	@echo "demo: runs/et_demo/samples/completion.png, runs/et_demo/samples/energy.png, runs/et_demo/plots/"


bench: build
	@$(BUILD)/tools/basin-bench all

# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, in their own build folder.
sanitize: deps
	@cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBASIN_SANITIZE=ON \
	  -DBASIN_CUDA=OFF -DBASIN_BUILD_TOOLS=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	@cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

format:
	@git ls-files '*.h' '*.cpp' '*.cu' '*.cuh' | xargs clang-format -i

clean:
	@rm -rf $(BUILD) $(BUILD)-asan
