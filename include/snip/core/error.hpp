// snip: SNIP/SNIPER multi-scale training primitives.
// core/error.hpp: the library's error type and the helpers that build its messages.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace snip {

/// @brief The one exception type snip throws. Its message names the offending
/// file, field and value wherever the caller gave them.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// @brief The pieces streamed into one string (10 significant digits for floating point):
/// how snip builds its error messages; public so code on top of snip writes its own alike.
template <class... Args>
std::string concat(Args&&... args) {
    std::ostringstream os;
    os.precision(10);
    (os << ... << std::forward<Args>(args));
    return os.str();
}

/// @brief Throws snip::error with the pieces streamed into one message.
template <class... Args>
[[noreturn]] void fail(Args&&... args) {
    throw error(concat(std::forward<Args>(args)...));
}

/// @brief Throws snip::error unless `cond` holds.
template <class... Args>
void require(bool cond, Args&&... args) {
    if (!cond) fail(std::forward<Args>(args)...);
}

} // namespace snip
