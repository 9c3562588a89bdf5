// Device parsing and printing.
#include "core/device.h"

#include <ostream>

#include "core/error.h"

namespace basin {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5) {
    const std::string digits = text.substr(5);
    if (digits.find_first_not_of("0123456789") == std::string::npos && digits.size() < 6) {
      return cuda(std::stoi(digits));
    }
  }
  fail("[device] unknown device '{}': expected cpu, cuda or cuda:N", text);
}

std::string Device::str() const { return is_cpu() ? "cpu" : fmt::format("cuda:{}", index); }

std::ostream& operator<<(std::ostream& os, const Device& device) { return os << device.str(); }

}  // namespace basin
