// Runs the CUDA deformable-convolution kernels (columns, col2im, offset gradient) on random
// images and offsets (groups of offsets, stride, dilation, padding, samples outside the map)
// and compares them with the CPU functions of ops/deform_conv.hpp, which use the same SNIP_HD
// maths. Built whenever CUDA is enabled (so the kernels never rot); skipped with a message
// when no GPU is present.
#include <snip/core/random.hpp>
#include <snip/cuda/deform_conv.cuh>
#include <snip/ops/deform_conv.hpp>

#include "cuda_test_util.cuh"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

namespace {

using namespace snip_cuda_test;

template <class T>
std::vector<T> random_vector(std::size_t n, double spread, std::uint64_t seed) {
    snip::splitmix64 g{seed};
    std::vector<T> v(n);
    for (auto& x : v)
        x = static_cast<T>((g.uniform() * 2.0 - 1.0) * spread);
    return v;
}

struct problem {
    int n, c, h, w, o, kh, kw;
    snip::deform_conv_options opt;
    double spread;
};

template <class T>
void check(const problem& p, std::uint64_t seed, double tol) {
    const std::array<std::ptrdiff_t, 4> in{p.n, p.c, p.h, p.w}, wt{p.o, p.c / p.opt.groups, p.kh,
                                                                     p.kw};
    const int oh = (p.h + 2 * p.opt.pad_h - (p.opt.dilation_h * (p.kh - 1) + 1)) / p.opt.stride_h + 1;
    const int ow = (p.w + 2 * p.opt.pad_w - (p.opt.dilation_w * (p.kw - 1) + 1)) / p.opt.stride_w + 1;
    const std::array<std::ptrdiff_t, 4> of{p.n, 2 * p.opt.offset_groups * p.kh * p.kw, oh, ow};
    const snip::deform_conv_geometry g =
        snip::make_deform_conv_geometry("test_cuda_deform_conv", in, wt, of, -1, p.opt);
    const auto input = random_vector<T>(std::size_t(p.n) * p.c * p.h * p.w, 1.0, seed);
    const auto offset = random_vector<T>(std::size_t(of[0] * of[1] * of[2] * of[3]), p.spread,
                                         seed + 1);
    const std::size_t cols = std::size_t(g.column_rows()) * std::size_t(g.positions());
    const auto grad_cols = random_vector<T>(cols, 1.0, seed + 2);
    const snip::feature_view<const T> iv(input.data(), p.n, p.c, p.h, p.w);
    const snip::feature_view<const T> ov(offset.data(), of[0], of[1], of[2], of[3]);
    std::vector<T> gi(input.size(), T(0)), goff(offset.size(), T(0));
    device_array<T> din(input), doff(offset), dgcol(grad_cols), dcol(std::vector<T>(cols, T(0))),
        dgi(gi), dgoff(goff);
    const std::size_t image = std::size_t(p.c) * p.h * p.w, image_off = offset.size() / p.n;
    int bad_cols = 0, bad_gi = 0, bad_goff = 0;
    for (int n = 0; n < p.n; ++n) {
        std::vector<T> cpu(cols);
        snip::deform_conv_columns(iv, ov, n, g, std::span<T>(cpu));
        CUDA_OK(snip::cuda::deform_conv_columns(din.ptr + n * image, doff.ptr + n * image_off,
                                                dcol.ptr, g));
        CUDA_OK(cudaDeviceSynchronize());
        bad_cols += count_differences(dcol.host(), cpu, tol);
        snip::deform_conv_columns_backward(std::span<const T>(grad_cols), iv, ov, n, g,
                                           snip::feature_view<T>(gi.data(), p.n, p.c, p.h, p.w),
                                           snip::feature_view<T>(goff.data(), of[0], of[1], of[2],
                                                                 of[3]));
        CUDA_OK(snip::cuda::deform_conv_col2im(dgcol.ptr, doff.ptr + n * image_off,
                                               dgi.ptr + n * image, g));
        CUDA_OK(snip::cuda::deform_conv_offset_grad(dgcol.ptr, din.ptr + n * image,
                                                    doff.ptr + n * image_off,
                                                    dgoff.ptr + n * image_off, g));
    }
    CUDA_OK(cudaDeviceSynchronize());
    bad_gi = count_differences(dgi.host(), gi, tol);
    bad_goff = count_differences(dgoff.host(), goff, tol);
    std::printf("deform_conv<%s> seed %llu (%d x %d x %d x %d, kernel %d x %d, groups %d, offset "
                "groups %d): %d of %zu columns, %d of %zu input gradients, %d of %zu offset "
                "gradients differ from the CPU\n",
                sizeof(T) == 4 ? "float" : "double", (unsigned long long)seed, p.n, p.c, p.h, p.w,
                p.kh, p.kw, p.opt.groups, p.opt.offset_groups, bad_cols, cols * p.n, bad_gi,
                gi.size(), bad_goff, goff.size());
    g_failures += (bad_cols + bad_gi + bad_goff) ? 1 : 0;
}

snip::deform_conv_options options(int stride, int pad, int dilation, int groups,
                                  int offset_groups) {
    snip::deform_conv_options o;
    o.stride_h = o.stride_w = stride;
    o.pad_h = o.pad_w = pad;
    o.dilation_h = o.dilation_w = dilation;
    o.groups = groups;
    o.offset_groups = offset_groups;
    return o;
}

} // namespace

int main() {
    if (skip_without_device("the deformable-convolution kernels were")) return skip_code;
    const problem problems[] = {
        {2, 8, 11, 13, 4, 3, 3, options(1, 1, 1, 1, 1), 2.0},
        {1, 12, 16, 15, 6, 3, 3, options(2, 2, 2, 2, 4), 5.0},
        {2, 6, 9, 10, 6, 2, 3, options(1, 0, 1, 3, 3), 1.5},
    };
    std::uint64_t seed = 1;
    for (const problem& p : problems) {
        // The GPU may fuse multiply-adds and adds atomically in any order.
        check<float>(p, seed, 1e-4);
        check<double>(p, seed, 1e-10);
        seed += 10;
    }
    // An invalid geometry is refused, an empty one is a no-op.
    snip::deform_conv_geometry bad;
    if (snip::cuda::deform_conv_columns<float>(nullptr, nullptr, nullptr, bad) !=
        cudaErrorInvalidValue)
        ++g_failures;
    std::printf("%s\n", g_failures ? "FAILED" : "all GPU results match the CPU");
    return g_failures ? 1 : 0;
}
