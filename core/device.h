// Where a tensor's buffer lives: the CPU or a CUDA device.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

namespace basin {

enum class DeviceKind : uint8_t { cpu, cuda };

/// A device: `cpu`, or `cuda:N`.
struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {DeviceKind::cuda, index}; }
  /// Parses "cpu", "cuda" or "cuda:N"; anything else is an error naming the text.
  static Device parse(const std::string& text);

  bool is_cpu() const { return kind == DeviceKind::cpu; }
  bool is_cuda() const { return kind == DeviceKind::cuda; }
  std::string str() const;
  bool operator==(const Device& o) const {
    return kind == o.kind && (is_cpu() || index == o.index);
  }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

std::ostream& operator<<(std::ostream& os, const Device& device);

/// True when this build has the CUDA backend and a CUDA device with a working driver is present.
bool cuda_is_available();
/// Number of CUDA devices (0 without the CUDA backend or a driver).
int cuda_device_count();

}  // namespace basin
