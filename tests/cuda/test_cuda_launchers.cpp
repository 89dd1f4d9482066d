// The compiled RoIAlign / RoIPool, NMS and IoU launchers (snip::cuda_launchers,
// cuda/launchers.hpp) called from a translation unit compiled by the host compiler, as the
// torch ops do. Runs everywhere: the error strings, the argument checks (bad options or
// extents give cudaErrorInvalidValue before any CUDA call) and empty problems (no CUDA call
// either). Without a GPU a real launch must fail with an error code, then the program exits
// 77 (skipped); with one, the launchers for float and double are compared with the CPU.
// cuda_runtime.h is included only for device memory; launchers.hpp needs no CUDA header.
#include <snip/cuda/launchers.hpp>
#include <snip/core/random.hpp>
#include <snip/det/iou.hpp>
#include <snip/ops/nms.hpp>
#include <snip/ops/roi_align.hpp>
#include <snip/ops/roi_pool.hpp>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace launchers = snip::cuda::launchers;

namespace {

int g_failures = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::printf("FAILED at %s:%d: %s\n", __FILE__, __LINE__, #cond);                       \
            ++g_failures;                                                                          \
        }                                                                                          \
    } while (0)

static_assert(std::is_same_v<launchers::stream_t, cudaStream_t>);

constexpr int invalid_value = static_cast<int>(cudaErrorInvalidValue);

/// The host-side checks of all eight launchers for element type T: no CUDA call is made.
template <class T>
void check_arguments() {
    // Never dereferenced: every call below returns before touching memory.
    T* const p = reinterpret_cast<T*>(alignof(T) * 16);
    std::int32_t* const a = reinterpret_cast<std::int32_t*>(64);
    snip::roi_align_options ao;
    snip::roi_pool_options po;
    ao.pooled_h = po.pooled_h = 0;
    CHECK(launchers::roi_align_forward(p, 1, 1, 4, 4, p, 1, p, ao) == invalid_value);
    CHECK(launchers::roi_align_backward(p, p, 1, p, 1, 1, 4, 4, ao) == invalid_value);
    CHECK(launchers::roi_pool_forward(p, 1, 1, 4, 4, p, 1, p, a, po) == invalid_value);
    CHECK(launchers::roi_pool_backward(p, a, p, 1, p, 1, 1, 4, 4, po) == invalid_value);
    ao = {};
    po = {};
    ao.spatial_scale = po.spatial_scale = 0.0;
    CHECK(launchers::roi_align_forward(p, 1, 1, 4, 4, p, 1, p, ao) == invalid_value);
    CHECK(launchers::roi_pool_forward(p, 1, 1, 4, 4, p, 1, p, a, po) == invalid_value);
    ao = {};
    po = {};
    CHECK(launchers::roi_align_forward(p, 1, -1, 4, 4, p, 1, p, ao) == invalid_value);
    CHECK(launchers::roi_align_backward(p, p, -1, p, 1, 1, 4, 4, ao) == invalid_value);
    CHECK(launchers::roi_pool_forward(p, 1, 1, 4, 4, p, -1, p, a, po) == invalid_value);
    CHECK(launchers::roi_pool_backward(p, a, p, 1, p, 1, 1, -4, 4, po) == invalid_value);
    CHECK(launchers::roi_pool_forward(p, 1, 1, 65536, 65536, p, 1, p, a, po) == invalid_value);
    // Nothing to do: success without a CUDA call (k = 0, or an empty feature map backward).
    CHECK(launchers::roi_align_forward(p, 1, 1, 4, 4, p, 0, p, ao) == launchers::success);
    CHECK(launchers::roi_align_backward(p, p, 1, p, 1, 1, 0, 4, ao) == launchers::success);
    CHECK(launchers::roi_pool_forward(p, 1, 1, 4, 4, p, 0, p, a, po) == launchers::success);
    CHECK(launchers::roi_pool_backward(p, a, p, 1, p, 1, 1, 4, 0, po) == launchers::success);

    // NMS and IoU: a NaN threshold, negative or too large counts; nothing to do for n = 0.
    std::uint64_t* const m = reinterpret_cast<std::uint64_t*>(64);
    std::int64_t keep[4] = {}, kept = -1;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(launchers::nms_sorted(p, 4, nan, m, keep, &kept) == invalid_value);
    CHECK(kept == 0);
    CHECK(launchers::nms_sorted(p, -1, 0.5, m, keep, &kept) == invalid_value);
    CHECK(launchers::nms_sorted(p, std::int64_t(65535) * 64 + 1, 0.5, m, keep, &kept) ==
          invalid_value);
    CHECK(launchers::nms_sorted(p, 4, 0.5, m, keep, nullptr) == invalid_value);
    CHECK(launchers::nms_sorted(p, 4, 0.5, nullptr, keep, &kept) == invalid_value);
    kept = -1;
    CHECK(launchers::nms_sorted(p, 0, 0.5, m, keep, &kept) == launchers::success);
    CHECK(kept == 0);
    CHECK(launchers::iou_matrix(p, -1, p, 1, p) == invalid_value);
    CHECK(launchers::iou_matrix(p, 1, p, -1, p) == invalid_value);
    CHECK(launchers::iou_matrix(p, 65536, p, 1, p) == invalid_value);
    CHECK(launchers::iou_matrix(p, 0, p, 3, p) == launchers::success);
    CHECK(launchers::iou_matrix(p, 3, p, 0, p) == launchers::success);
}

/// A device copy of a host vector, freed on scope exit.
template <class T>
struct device_array {
    T* ptr = nullptr;
    std::size_t n = 0;
    explicit device_array(const std::vector<T>& h) : n(h.size()) {
        if (cudaMalloc(reinterpret_cast<void**>(&ptr), (n ? n : 1) * sizeof(T)) != cudaSuccess)
            ptr = nullptr;
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

template <class T>
bool close(const std::vector<T>& a, const std::vector<T>& b, double tol) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!(std::fabs(double(a[i]) - double(b[i])) <= tol * (1.0 + std::fabs(double(b[i])))))
            return false;
    return true;
}

/// RoIAlign and RoIPool, forward and backward, through the launchers on the current device's
/// default stream and on a created stream, against the CPU code.
template <class T>
void check_on_gpu(double tol) {
    const int n = 2, c = 3, h = 9, w = 11, k = 12;
    snip::splitmix64 g{7};
    std::vector<T> feat(std::size_t(n) * c * h * w), rois(std::size_t(k) * 5);
    for (auto& v : feat)
        v = static_cast<T>(g.uniform() * 2.0 - 1.0);
    for (int i = 0; i < k; ++i) {
        rois[5 * i] = static_cast<T>(g.below(n));
        rois[5 * i + 1] = static_cast<T>(g.uniform() * 2 * w);
        rois[5 * i + 2] = static_cast<T>(g.uniform() * 2 * h);
        rois[5 * i + 3] = static_cast<T>(rois[5 * i + 1] + g.uniform() * w);
        rois[5 * i + 4] = static_cast<T>(rois[5 * i + 2] + g.uniform() * h);
    }
    snip::roi_align_options ao;
    ao.pooled_h = 3;
    ao.pooled_w = 2;
    ao.spatial_scale = 0.5;
    ao.aligned = true;
    snip::roi_pool_options po;
    po.pooled_h = 2;
    po.pooled_w = 3;
    po.spatial_scale = 0.5;
    const snip::feature_view<const T> fv(feat.data(), n, c, h, w);
    const snip::roi_view<const T> rv(rois.data(), k);
    const auto align = snip::roi_align(fv, rv, ao);
    const auto align_grad = snip::roi_align_backward(
        snip::feature_view<const T>(align.data(), k, c, ao.pooled_h, ao.pooled_w), rv,
        {n, c, h, w}, ao);
    const auto pool = snip::roi_pool(fv, rv, po);
    const auto pool_grad = snip::roi_pool_backward(
        snip::feature_view<const T>(pool.values.data(), k, c, po.pooled_h, po.pooled_w), rv,
        snip::feature_view<const std::int32_t>(pool.argmax.data(), k, c, po.pooled_h,
                                               po.pooled_w),
        {n, c, h, w}, po);

    cudaStream_t stream = nullptr;
    CHECK(cudaStreamCreate(&stream) == cudaSuccess);
    for (launchers::stream_t s : {launchers::stream_t{}, stream}) {
        device_array<T> df(feat), dr(rois), da(std::vector<T>(align.size())),
            dag(std::vector<T>(feat.size(), T(0))), dp(std::vector<T>(pool.values.size())),
            dpg(std::vector<T>(feat.size(), T(0)));
        device_array<std::int32_t> darg(std::vector<std::int32_t>(pool.argmax.size()));
        CHECK(launchers::roi_align_forward(df.ptr, n, c, h, w, dr.ptr, k, da.ptr, ao, s) == 0);
        CHECK(launchers::roi_align_backward(da.ptr, dr.ptr, k, dag.ptr, n, c, h, w, ao, s) == 0);
        CHECK(launchers::roi_pool_forward(df.ptr, n, c, h, w, dr.ptr, k, dp.ptr, darg.ptr, po, s) ==
              0);
        CHECK(launchers::roi_pool_backward(dp.ptr, darg.ptr, dr.ptr, k, dpg.ptr, n, c, h, w, po,
                                           s) == 0);
        CHECK(cudaDeviceSynchronize() == cudaSuccess);
        CHECK(close(da.host(), align, tol));
        CHECK(close(dag.host(), align_grad, tol));
        CHECK(close(dp.host(), pool.values, 0.0));
        CHECK(darg.host() == pool.argmax);
        CHECK(close(dpg.host(), pool_grad, tol));
    }
    cudaStreamDestroy(stream);
    std::printf("launchers<%s>: RoIAlign and RoIPool forward/backward checked against the CPU\n",
                sizeof(T) == 4 ? "float" : "double");
}

/// NMS (boxes sorted here by decreasing score, ties by index) and the IoU matrix through the
/// launchers, against snip::nms and snip::iou_matrix on the CPU.
template <class T>
void check_nms_iou_on_gpu(double tol) {
    const int n = 300, m = 70;
    snip::splitmix64 g{11};
    std::vector<T> boxes(4 * static_cast<std::size_t>(n)), scores(static_cast<std::size_t>(n)),
        other(4 * static_cast<std::size_t>(m));
    auto fill = [&](std::vector<T>& b, int count) {
        for (int i = 0; i < count; ++i) {
            const double x = g.uniform() * 200, y = g.uniform() * 200;
            b[4 * std::size_t(i)] = static_cast<T>(x);
            b[4 * std::size_t(i) + 1] = static_cast<T>(y);
            b[4 * std::size_t(i) + 2] = static_cast<T>(x + 1 + g.uniform() * 60);
            b[4 * std::size_t(i) + 3] = static_cast<T>(y + 1 + g.uniform() * 60);
        }
    };
    fill(boxes, n);
    fill(other, m);
    for (auto& s : scores) s = static_cast<T>(double(g.below(20)) / 20.0); // many ties
    for (const double thr : {0.3, 0.5, 0.7}) {
        const auto cpu = snip::nms(snip::as_box_view(std::as_const(boxes)),
                                   std::span<const T>(scores), thr);
        std::vector<std::int64_t> order(static_cast<std::size_t>(n));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](std::int64_t x, std::int64_t y) {
            return scores[std::size_t(x)] > scores[std::size_t(y)];
        });
        std::vector<T> sorted(boxes.size());
        for (std::size_t r = 0; r < std::size_t(n); ++r)
            for (std::size_t k = 0; k < 4; ++k)
                sorted[4 * r + k] = boxes[4 * std::size_t(order[r]) + k];
        device_array<T> db(sorted);
        device_array<std::uint64_t> dm(std::vector<std::uint64_t>(snip::nms_mask_words(n)));
        std::vector<std::int64_t> keep(static_cast<std::size_t>(n));
        std::int64_t kept = 0;
        CHECK(launchers::nms_sorted(db.ptr, n, thr, dm.ptr, keep.data(), &kept) == 0);
        std::vector<std::int64_t> gpu;
        for (std::int64_t i = 0; i < kept; ++i)
            gpu.push_back(order[std::size_t(keep[std::size_t(i)])]);
        CHECK(gpu == cpu);
    }
    const auto want = snip::iou_matrix(snip::as_box_view(std::as_const(boxes)),
                                       snip::as_box_view(std::as_const(other)));
    device_array<T> da(boxes), dother(other), dout(std::vector<T>(static_cast<std::size_t>(n) * m));
    CHECK(launchers::iou_matrix(da.ptr, n, dother.ptr, m, dout.ptr) == 0);
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(close(dout.host(), want, tol));
    std::printf("launchers<%s>: NMS and the IoU matrix checked against the CPU\n",
                sizeof(T) == 4 ? "float" : "double");
}

} // namespace

int main() {
    CHECK(std::strcmp(launchers::error_string(launchers::success), "no error") == 0);
    CHECK(std::strcmp(launchers::error_string(invalid_value), "invalid argument") == 0);
    check_arguments<float>();
    check_arguments<double>();

    int devices = 0;
    const cudaError_t probe = cudaGetDeviceCount(&devices);
    if (probe != cudaSuccess || devices == 0) {
        // A real launch must report the missing device as an error code (never 0).
        const std::vector<float> host(64, 1.0f);
        const float* p = host.data();
        float out[64];
        snip::roi_align_options ao;
        ao.pooled_h = ao.pooled_w = 2;
        const int e = launchers::roi_align_forward(p, 1, 1, 4, 4, p, 1, out, ao);
        CHECK(e != launchers::success);
        std::printf("without a GPU the launch returns %d: %s\n", e, launchers::error_string(e));
        if (g_failures) return 1;
        std::printf("[skip] no CUDA device (%s): the launchers' argument checks passed, the "
                    "kernels were linked but not run\n",
                    cudaGetErrorString(probe));
        return 77; // CTest SKIP_RETURN_CODE
    }
    check_on_gpu<float>(1e-4);
    check_on_gpu<double>(1e-10);
    check_nms_iou_on_gpu<float>(1e-6);
    check_nms_iou_on_gpu<double>(1e-12);
    std::printf("%s\n", g_failures ? "FAILED" : "all launcher results match the CPU");
    return g_failures ? 1 : 0;
}
