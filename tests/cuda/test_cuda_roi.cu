// Runs the CUDA RoIAlign and RoIPool kernels (forward and backward) on random inputs and
// compares them with the CPU path, which uses the same SNIP_HD maths. Built whenever CUDA is
// enabled (so the kernels never rot); skipped with a message when no GPU is present.
#include <snip/cuda/roi_align.cuh>
#include <snip/cuda/roi_pool.cuh>
#include <snip/core/random.hpp>
#include <snip/ops/roi_align.hpp>
#include <snip/ops/roi_pool.hpp>

#include "cuda_test_util.cuh"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

using namespace snip_cuda_test;

struct problem {
    int n = 2, c = 3, h = 11, w = 13, k = 40;
    double scale = 0.5;
};

template <class T>
void random_inputs(const problem& p, std::uint64_t seed, std::vector<T>& feat,
                   std::vector<T>& rois) {
    snip::splitmix64 g{seed};
    feat.resize(std::size_t(p.n) * p.c * p.h * p.w);
    for (auto& v : feat)
        v = static_cast<T>(g.uniform() * 2.0 - 1.0);
    rois.resize(std::size_t(p.k) * 5);
    const double img_w = p.w / p.scale, img_h = p.h / p.scale;
    for (int i = 0; i < p.k; ++i) {
        rois[5 * i] = static_cast<T>(g.below(std::uint64_t(p.n)));
        // partly outside, sometimes inverted or degenerate
        rois[5 * i + 1] = static_cast<T>(g.uniform() * 1.4 * img_w - 0.2 * img_w);
        rois[5 * i + 2] = static_cast<T>(g.uniform() * 1.4 * img_h - 0.2 * img_h);
        rois[5 * i + 3] = static_cast<T>(rois[5 * i + 1] + (g.uniform() - 0.1) * img_w);
        rois[5 * i + 4] = static_cast<T>(rois[5 * i + 2] + (g.uniform() - 0.1) * img_h);
        if (i % 10 == 0) rois[5 * i + 3] = rois[5 * i + 1];
    }
}

template <class T>
void check_roi_align(const problem& p, std::uint64_t seed, int sampling_ratio, bool aligned,
                     double tol) {
    std::vector<T> feat, rois;
    random_inputs(p, seed, feat, rois);
    snip::validate_rois(snip::roi_view<const T>(rois.data(), p.k), p.n, p.scale);
    snip::roi_align_options o;
    o.pooled_h = 3;
    o.pooled_w = 4;
    o.spatial_scale = p.scale;
    o.sampling_ratio = sampling_ratio;
    o.aligned = aligned;
    const snip::feature_view<const T> fv(feat.data(), p.n, p.c, p.h, p.w);
    const snip::roi_view<const T> rv(rois.data(), p.k);
    const auto cpu = snip::roi_align(fv, rv, o);
    std::vector<T> grad(cpu.size());
    snip::splitmix64 g{seed ^ 0x5eedull};
    for (auto& v : grad)
        v = static_cast<T>(g.uniform() - 0.5);
    const auto cpu_grad = snip::roi_align_backward(
        snip::feature_view<const T>(grad.data(), p.k, p.c, o.pooled_h, o.pooled_w), rv,
        {p.n, p.c, p.h, p.w}, o);

    device_array<T> dfeat(feat), drois(rois), dout(std::vector<T>(cpu.size())), dgrad(grad),
        dgf(std::vector<T>(feat.size(), T(0)));
    CUDA_OK(
        snip::cuda::roi_align_forward(dfeat.ptr, p.n, p.c, p.h, p.w, drois.ptr, p.k, dout.ptr, o));
    CUDA_OK(
        snip::cuda::roi_align_backward(dgrad.ptr, drois.ptr, p.k, dgf.ptr, p.n, p.c, p.h, p.w, o));
    CUDA_OK(cudaDeviceSynchronize());
    const int bf = count_differences(dout.host(), cpu, tol);
    const int bb = count_differences(dgf.host(), cpu_grad, tol);
    std::printf("roi_align<%s> seed %llu sampling %d aligned %d: %d of %zu outputs, %d of %zu "
                "gradients differ from the CPU\n",
                sizeof(T) == 4 ? "float" : "double", (unsigned long long)seed, sampling_ratio,
                int(aligned), bf, cpu.size(), bb, cpu_grad.size());
    g_failures += (bf + bb) ? 1 : 0;
}

template <class T>
void check_roi_pool(const problem& p, std::uint64_t seed, double tol) {
    std::vector<T> feat, rois;
    random_inputs(p, seed, feat, rois);
    snip::roi_pool_options o;
    o.pooled_h = 3;
    o.pooled_w = 4;
    o.spatial_scale = p.scale;
    const snip::feature_view<const T> fv(feat.data(), p.n, p.c, p.h, p.w);
    const snip::roi_view<const T> rv(rois.data(), p.k);
    const auto cpu = snip::roi_pool(fv, rv, o);
    std::vector<T> grad(cpu.values.size());
    snip::splitmix64 g{seed ^ 0x5eedull};
    for (auto& v : grad)
        v = static_cast<T>(g.uniform() - 0.5);
    const snip::feature_view<const std::int32_t> av(cpu.argmax.data(), p.k, p.c, o.pooled_h,
                                                    o.pooled_w);
    const auto cpu_grad = snip::roi_pool_backward(
        snip::feature_view<const T>(grad.data(), p.k, p.c, o.pooled_h, o.pooled_w), rv, av,
        {p.n, p.c, p.h, p.w}, o);

    device_array<T> dfeat(feat), drois(rois), dout(std::vector<T>(cpu.values.size())), dgrad(grad),
        dgf(std::vector<T>(feat.size(), T(0)));
    device_array<std::int32_t> darg(std::vector<std::int32_t>(cpu.argmax.size()));
    CUDA_OK(snip::cuda::roi_pool_forward(dfeat.ptr, p.n, p.c, p.h, p.w, drois.ptr, p.k, dout.ptr,
                                         darg.ptr, o));
    CUDA_OK(snip::cuda::roi_pool_backward(dgrad.ptr, darg.ptr, drois.ptr, p.k, dgf.ptr, p.n, p.c,
                                          p.h, p.w, o));
    CUDA_OK(cudaDeviceSynchronize());
    const int bf = count_differences(dout.host(), cpu.values, 0.0); // a max is exact
    const auto arg = darg.host();
    int ba = 0;
    for (std::size_t i = 0; i < arg.size(); ++i)
        ba += arg[i] != cpu.argmax[i] ? 1 : 0;
    const int bb = count_differences(dgf.host(), cpu_grad, tol);
    std::printf("roi_pool<%s> seed %llu: %d of %zu outputs, %d argmax, %d of %zu gradients differ "
                "from the CPU\n",
                sizeof(T) == 4 ? "float" : "double", (unsigned long long)seed, bf,
                cpu.values.size(), ba, bb, cpu_grad.size());
    g_failures += (bf + ba + bb) ? 1 : 0;
}

} // namespace

int main() {
    if (skip_without_device("the RoIAlign/RoIPool kernels were")) return skip_code;
    const problem p;
    for (std::uint64_t seed : {1ull, 2ull, 3ull})
        for (int sr : {0, 1, 2, 3})
            for (bool aligned : {false, true}) {
                // The GPU may fuse multiply-adds and adds atomically in any order.
                check_roi_align<float>(p, seed, sr, aligned, 1e-4);
                check_roi_align<double>(p, seed, sr, aligned, 1e-10);
            }
    for (std::uint64_t seed : {1ull, 2ull, 3ull}) {
        check_roi_pool<float>(p, seed, 1e-5);
        check_roi_pool<double>(p, seed, 1e-12);
    }
    // Empty inputs are no-ops.
    if (snip::cuda::roi_align_forward<float>(nullptr, 1, 1, 1, 1, nullptr, 0, nullptr,
                                             snip::roi_align_options{}) != cudaSuccess)
        ++g_failures;
    std::printf("%s\n", g_failures ? "FAILED" : "all GPU results match the CPU");
    return g_failures ? 1 : 0;
}
