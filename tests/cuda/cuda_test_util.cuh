// Scaffolding shared by the nvcc test programs tests/cuda/test_*.cu: a failure counter, the
// CUDA_OK and EXPECT macros that bump it, a device copy of a host vector, an element-wise
// comparison with the CPU and the skip (exit code 77) when no GPU is present.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <vector>

namespace snip_cuda_test {

/// The number of failed checks of the program.
inline int g_failures = 0;

/// Evaluates a cudaError_t expression; on an error prints it, counts a failure and returns
/// from the calling (void) function.
#define CUDA_OK(expr)                                                                              \
    do {                                                                                           \
        const cudaError_t err_ = (expr);                                                           \
        if (err_ != cudaSuccess) {                                                                 \
            std::printf("CUDA error %s at %s:%d: %s\n", cudaGetErrorString(err_), __FILE__,        \
                        __LINE__, #expr);                                                          \
            ++::snip_cuda_test::g_failures;                                                        \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/// Counts a failure (and prints it) when cond is false; goes on.
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::printf("FAILED at %s:%d: %s\n", __FILE__, __LINE__, #cond);                       \
            ++::snip_cuda_test::g_failures;                                                        \
        }                                                                                          \
    } while (0)

/// A device copy of a host vector, freed on scope exit.
template <class T>
struct device_array {
    T* ptr = nullptr;
    std::size_t n = 0;
    explicit device_array(const std::vector<T>& h) : n(h.size()) {
        if (cudaMalloc(&ptr, (n ? n : 1) * sizeof(T)) != cudaSuccess) ptr = nullptr;
        if (ptr && n) cudaMemcpy(ptr, h.data(), n * sizeof(T), cudaMemcpyHostToDevice);
    }
    device_array(const device_array&) = delete;
    device_array& operator=(const device_array&) = delete;
    ~device_array() { cudaFree(ptr); }
    std::vector<T> host() const {
        std::vector<T> h(n);
        if (n) cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost);
        return h;
    }
};

/// How many elements of a differ from b by more than tol * (1 + |b|) (NaN counts).
template <class T>
int count_differences(const std::vector<T>& a, const std::vector<T>& b, double tol) {
    int bad = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!(std::fabs(double(a[i]) - double(b[i])) <= tol * (1.0 + std::fabs(double(b[i])))))
            ++bad;
    return bad;
}

/// True when a CUDA device is present.
inline bool have_device() {
    int devices = 0;
    return cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
}

/// Without a CUDA device prints "[skip] no CUDA device: <what> built and linked but not
/// run<note>" and returns true (the caller then exits with skip_code); false with one.
inline bool skip_without_device(const char* what, const char* note = "") {
    if (have_device()) return false;
    std::printf("[skip] no CUDA device: %s built and linked but not run%s\n", what, note);
    return true;
}

/// CTest's SKIP_RETURN_CODE for the programs (tests/CMakeLists.txt).
inline constexpr int skip_code = 77;

} // namespace snip_cuda_test
