#!/usr/bin/env bash
# Collects the built programs and the non-system shared libraries they need into one compressed
# archive, OUT_DIR/bundle.tar.gz, so they can run on a GPU machine that has the NVIDIA driver and
# CUDA runtime but none of the Debian packages basin builds against. There:
#   mkdir -p /tmp/b && tar -C /tmp/b -xzf OUT_DIR/bundle.tar.gz &&
#   LD_LIBRARY_PATH=/tmp/b/lib:/usr/local/cuda/lib64 /tmp/b/bin/basin_tests
# Usage: tools/gpu-bundle.sh BUILD_DIR OUT_DIR
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
strip --strip-unneeded "$out"/bin/* "$out"/lib/libbasin.so.* 2>/dev/null || true
# The tests find their fixtures and the command-line tools through paths compiled in from this
# build; gpu-check.sh links those paths to the checkout and the unpacked tools on the GPU machine.
{
  echo "source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")"
  echo "tools_dir=$(cd "$build/tools" && pwd)"
} >"$out/paths.env"
tar -C "$out" -czf "$out.tar.gz" bin lib paths.env
rm -rf "$out"
mkdir -p "$out"
mv "$out.tar.gz" "$out/bundle.tar.gz"
du -sh "$out/bundle.tar.gz"
