#!/usr/bin/env bash
# Collects the built programs and the non-system shared libraries they need into one folder, so
# they can run on a GPU machine that has the NVIDIA driver and CUDA runtime but none of the
# Debian packages basin builds against. Usage: tools/gpu-bundle.sh BUILD_DIR OUT_DIR
set -euo pipefail
build=${1:-build}
out=${2:-gpu-bundle}
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
cp "$build"/tests/basin_tests "$out/bin/"
for f in "$build"/tools/basin-*; do [ -x "$f" ] && cp "$f" "$out/bin/"; done
cp -P "$build"/libbasin.so* "$out/lib/"
# The CUDA libraries come from the GPU machine's own toolkit; libc and the loader from its system.
skip='linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libcuda\.so|libcudart|libcublas|libnvidia'
for f in "$out"/bin/* "$out"/lib/libbasin.so; do
  ldd "$f" | awk '/=> \//{print $3}' | grep -Ev "$skip" || true
done | sort -u | while read -r lib; do cp -L "$lib" "$out/lib/"; done
du -sh "$out"
