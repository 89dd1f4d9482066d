// Runs the CUDA deformable PS RoI pooling kernels (forward and backward, with and without
// offsets, position-sensitive groups, several offset classes) on random inputs and compares
// them with the CPU path, which uses the same SNIP_HD maths (sample by sample on the GPU, in
// separable form on the CPU: equal up to rounding). Also the compiled launchers' argument
// checks. Built whenever CUDA is enabled (so the kernels never rot); skipped with a message
// when no GPU is present.
#include <snip/core/random.hpp>
#include <snip/cuda/deform_roi_pool.cuh>
#include <snip/cuda/launchers.hpp>
#include <snip/ops/deform_roi_pool.hpp>
#include <snip/ops/roi_align.hpp>

#include "cuda_test_util.cuh"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

using namespace snip_cuda_test;

struct problem {
    int n = 2, h = 11, w = 13, k = 40;
    double scale = 0.5;
    int output_dim = 6, group_size = 1, pooled = 3, part = 0, samples = 2, classes = 1;
    bool no_trans = false;
};

template <class T>
std::vector<T> uniform(std::size_t n, double lo, double hi, snip::splitmix64& g) {
    std::vector<T> v(n);
    for (auto& x : v)
        x = static_cast<T>(lo + (hi - lo) * g.uniform());
    return v;
}

template <class T>
void check(const problem& p, std::uint64_t seed, double tol) {
    snip::deform_roi_pool_options o;
    o.spatial_scale = p.scale;
    o.output_dim = p.output_dim;
    o.group_size = p.group_size;
    o.pooled_size = p.pooled;
    o.part_size = p.part;
    o.sample_per_part = p.samples;
    o.trans_std = 0.1;
    o.no_trans = p.no_trans;
    const int c = p.output_dim * p.group_size * p.group_size, q = o.parts();
    snip::splitmix64 g{seed};
    const auto feat = uniform<T>(std::size_t(p.n) * c * p.h * p.w, -1, 1, g);
    std::vector<T> rois(std::size_t(p.k) * 5);
    const double img_w = p.w / p.scale, img_h = p.h / p.scale;
    for (int i = 0; i < p.k; ++i) {
        rois[5 * i] = static_cast<T>(g.below(std::uint64_t(p.n)));
        rois[5 * i + 1] = static_cast<T>(g.uniform() * 1.4 * img_w - 0.2 * img_w);
        rois[5 * i + 2] = static_cast<T>(g.uniform() * 1.4 * img_h - 0.2 * img_h);
        rois[5 * i + 3] = static_cast<T>(rois[5 * i + 1] + (g.uniform() - 0.1) * img_w);
        rois[5 * i + 4] = static_cast<T>(rois[5 * i + 2] + (g.uniform() - 0.1) * img_h);
    }
    const int oc = 2 * p.classes;
    const auto offsets = uniform<T>(std::size_t(p.k) * oc * q * q, -2, 2, g);
    const snip::feature_view<const T> fv(feat.data(), p.n, c, p.h, p.w);
    const snip::roi_view<const T> rv(rois.data(), p.k);
    const snip::feature_view<const T> ov =
        p.no_trans ? snip::feature_view<const T>()
                   : snip::feature_view<const T>(offsets.data(), p.k, oc, q, q);
    snip::validate_rois(rv, p.n, p.scale);
    const auto cpu = snip::deform_roi_pool(fv, rv, ov, o);
    const auto grad = uniform<T>(cpu.size(), -0.5, 0.5, g);
    const auto cpu_g = snip::deform_roi_pool_backward(
        snip::feature_view<const T>(grad.data(), p.k, p.output_dim, p.pooled, p.pooled), fv, rv, ov,
        o);

    device_array<T> dfeat(feat), drois(rois), doff(offsets), dout(std::vector<T>(cpu.size())),
        dgrad(grad), dgf(std::vector<T>(feat.size(), T(0))),
        dgo(std::vector<T>(offsets.size(), T(0)));
    const T* off = p.no_trans ? nullptr : doff.ptr;
    // Half the runs through the compiled launchers (as the torch ops call them).
    if (seed % 2) {
        CUDA_OK(snip::cuda::deform_roi_pool_forward(dfeat.ptr, p.n, c, p.h, p.w, drois.ptr, p.k,
                                                    off, oc, dout.ptr, o));
        CUDA_OK(snip::cuda::deform_roi_pool_backward(dgrad.ptr, dfeat.ptr, p.n, c, p.h, p.w,
                                                     drois.ptr, p.k, off, oc, dgf.ptr, dgo.ptr, o));
    } else {
        CUDA_OK(static_cast<cudaError_t>(snip::cuda::launchers::deform_roi_pool_forward(
            dfeat.ptr, p.n, c, p.h, p.w, drois.ptr, p.k, off, oc, dout.ptr, o)));
        CUDA_OK(static_cast<cudaError_t>(snip::cuda::launchers::deform_roi_pool_backward(
            dgrad.ptr, dfeat.ptr, p.n, c, p.h, p.w, drois.ptr, p.k, off, oc, dgf.ptr, dgo.ptr, o)));
    }
    CUDA_OK(cudaDeviceSynchronize());
    const int bf = count_differences(dout.host(), cpu, tol);
    const int bg = count_differences(dgf.host(), cpu_g.features, tol);
    const int bo = p.no_trans ? 0 : count_differences(dgo.host(), cpu_g.offsets, tol);
    std::printf("deform_roi_pool<%s> seed %llu G %d classes %d no_trans %d: %d of %zu outputs, "
                "%d of %zu feature gradients, %d of %zu offset gradients differ from the CPU\n",
                sizeof(T) == 4 ? "float" : "double", (unsigned long long)seed, p.group_size,
                p.classes, int(p.no_trans), bf, cpu.size(), bg, cpu_g.features.size(), bo,
                cpu_g.offsets.size());
    g_failures += (bf + bg + bo) ? 1 : 0;
}

/// The argument checks of the launchers: no CUDA call is made.
template <class T>
void check_arguments() {
    T* const p = reinterpret_cast<T*>(alignof(T) * 16); // never dereferenced
    snip::deform_roi_pool_options o;
    o.output_dim = 2;
    o.pooled_size = 3;
    constexpr int invalid = static_cast<int>(cudaErrorInvalidValue);
    namespace l = snip::cuda::launchers;
    EXPECT(l::deform_roi_pool_forward(p, 1, 3, 4, 4, p, 1, p, 2, p, o) == invalid); // channels
    EXPECT(l::deform_roi_pool_forward(p, 1, 2, 4, 4, p, 1, nullptr, 2, p, o) == invalid);
    EXPECT(l::deform_roi_pool_forward(p, 1, 2, 4, 4, p, 1, p, 3, p, o) == invalid); // odd
    EXPECT(l::deform_roi_pool_backward(p, p, 1, 2, 4, 4, p, 1, p, 6, p, p, o) == invalid);
    o.sample_per_part = 0;
    EXPECT(l::deform_roi_pool_forward(p, 1, 2, 4, 4, p, 1, p, 2, p, o) == invalid);
    o.sample_per_part = 2;
    o.spatial_scale = 0;
    EXPECT(l::deform_roi_pool_backward(p, p, 1, 2, 4, 4, p, 1, p, 2, p, p, o) == invalid);
    o.spatial_scale = 1;
    EXPECT(l::deform_roi_pool_forward(p, 1, 2, 4, 4, p, 0, p, 2, p, o) == l::success); // k = 0
    EXPECT(l::deform_roi_pool_backward(p, p, 1, 2, 0, 4, p, 1, p, 2, p, p, o) == l::success);
}

} // namespace

int main() {
    check_arguments<float>();
    check_arguments<double>();
    if (skip_without_device("the deformable RoI pooling kernels were",
                            g_failures ? " (argument checks: FAILED)" : " (argument checks: passed)"))
        return g_failures ? 1 : skip_code;
    for (std::uint64_t seed : {1ull, 2ull, 3ull, 4ull}) {
        problem p;      // SNIPER's head in small: G 1, one class
        problem ps = p; // position-sensitive, two offset classes, parts coarser than bins
        ps.group_size = 2;
        ps.classes = 2;
        ps.pooled = 4;
        ps.part = 2;
        ps.samples = 3;
        problem pn = p; // no offsets
        pn.no_trans = true;
        pn.samples = 4;
        for (const problem& q : {p, ps, pn}) {
            // The GPU sums sample by sample (and adds atomically in any order), the CPU by rows
            // and columns: equal up to rounding.
            check<float>(q, seed, 1e-4);
            check<double>(q, seed, 1e-10);
        }
    }
    std::printf("%s\n", g_failures ? "FAILED" : "all GPU results match the CPU");
    return g_failures ? 1 : 0;
}
