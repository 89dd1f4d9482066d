// snip: SNIP/SNIPER multi-scale training primitives.
// config.hpp: version, the host+device marker and the library's error type.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#define SNIP_VERSION_MAJOR 0
#define SNIP_VERSION_MINOR 1
#define SNIP_VERSION_PATCH 0

/// Marks a function usable on the host and, when compiled by nvcc, on the device.
#if defined(__CUDACC__) || defined(__HIPCC__)
#define SNIP_HD __host__ __device__
#else
#define SNIP_HD
#endif

namespace snip {

/// @brief The one exception type snip throws. Its message names the offending
/// file, field and value wherever the caller gave them.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
    std::ostringstream os;
    os.precision(10);
    (os << ... << std::forward<Args>(args));
    return os.str();
}
} // namespace detail

/// @brief Throws snip::error with the pieces streamed into one message.
template <class... Args>
[[noreturn]] void fail(Args&&... args) {
    throw error(detail::concat(std::forward<Args>(args)...));
}

/// @brief Throws snip::error unless `cond` holds.
template <class... Args>
void require(bool cond, Args&&... args) {
    if (!cond) fail(std::forward<Args>(args)...);
}

} // namespace snip
