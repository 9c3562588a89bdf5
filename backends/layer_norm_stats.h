// A layer-norm row's statistics, shared by the CPU and CUDA kernels: built from the row's mean
// and centred sum of squares, however each backend computed them.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define BASIN_LN_HD __host__ __device__
#else
#define BASIN_LN_HD
#endif

namespace basin {

/// A row's mean and 1 / sqrt(var + eps) in double, and as T for the elementwise passes. The mean
/// is also split into hi + lo in T so that (x - hi) - lo centres float32 rows with a large mean as
/// accurately as double would.
template <class T>
struct RowStats {
  double mean, rstd;
  T hi, lo, r;

  /// From the row's mean and centred sum of squares over d elements (biased variance).
  BASIN_LN_HD static RowStats from_sums(double mean, double centred_sq, int64_t d, double eps) {
    RowStats st;
    st.mean = mean;
    st.rstd = 1.0 / std::sqrt(centred_sq / static_cast<double>(d) + eps);
    st.hi = static_cast<T>(mean);
    st.lo = static_cast<T>(mean - static_cast<double>(st.hi));
    st.r = static_cast<T>(st.rstd);
    return st;
  }
  BASIN_LN_HD T normalised(T v) const { return ((v - hi) - lo) * r; }
};

}  // namespace basin

#undef BASIN_LN_HD
