// Runs the CUDA bitmask NMS and compares its kept boxes with snip::nms on the CPU, on
// random clustered boxes (float and double, several sizes, thresholds and max_out).
// Built whenever CUDA is enabled (so the kernel never rots); skipped with a message
// (exit code 77) when no GPU is present.
#include <snip/core/random.hpp>
#include <snip/cuda/nms.cuh>
#include <snip/ops/nms.hpp>

#include "cuda_test_util.cuh"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

namespace {

/// n boxes around n / 8 objects (edges jittered by +-15%), whole pixels, 9 score values
/// (many ties), a few exact duplicates.
template <class T>
void make_boxes(std::uint64_t seed, int n, std::vector<T>& xyxy, std::vector<T>& scores) {
    snip::splitmix64 g{seed};
    const int objects = std::max(1, n / 8);
    std::vector<double> obj(4 * std::size_t(objects));
    for (int k = 0; k < objects; ++k) {
        obj[4 * k] = 1000 * g.uniform();
        obj[4 * k + 1] = 700 * g.uniform();
        obj[4 * k + 2] = 8 + 200 * g.uniform();
        obj[4 * k + 3] = 8 + 200 * g.uniform();
    }
    xyxy.clear();
    scores.clear();
    for (int i = 0; i < n; ++i) {
        if (i > 0 && g.uniform() < 0.05) {
            const auto j = std::size_t(g.below(std::uint64_t(i)));
            for (int k = 0; k < 4; ++k) xyxy.push_back(xyxy[4 * j + std::size_t(k)]);
        } else {
            const double* o = &obj[4 * std::size_t(g.below(std::uint64_t(objects)))];
            const double jx = 0.15 * o[2], jy = 0.15 * o[3];
            const double x1 = std::round(o[0] + jx * (2 * g.uniform() - 1));
            const double y1 = std::round(o[1] + jy * (2 * g.uniform() - 1));
            const double x2 = std::max(x1, std::round(o[0] + o[2] + jx * (2 * g.uniform() - 1)));
            const double y2 = std::max(y1, std::round(o[1] + o[3] + jy * (2 * g.uniform() - 1)));
            xyxy.insert(xyxy.end(), {T(x1), T(y1), T(x2), T(y2)});
        }
        scores.push_back(T(double(1 + g.below(9)) / 10.0));
    }
}

struct device_buffers {
    void* boxes = nullptr;
    std::uint64_t* masks = nullptr;
    ~device_buffers() {
        cudaFree(boxes);
        cudaFree(masks);
    }
};

/// 0 when the GPU and the CPU agree, 1 when they differ, 2 on a CUDA error.
template <class T>
int compare(std::uint64_t seed, int n, double thr, std::size_t max_out,
            snip::pixel_convention conv) {
    std::vector<T> xyxy, scores;
    make_boxes(seed, n, xyxy, scores);
    snip::nms_options opt;
    opt.max_out = max_out;
    opt.convention = conv;
    const auto cpu = snip::nms(snip::as_box_view(xyxy), scores, thr, opt);

    // rank order: decreasing score, equal scores by increasing index
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t a, std::int64_t b) { return scores[a] > scores[b]; });
    std::vector<T> sorted(4 * std::size_t(n));
    for (std::size_t p = 0; p < std::size_t(n); ++p)
        for (std::size_t k = 0; k < 4; ++k) sorted[4 * p + k] = xyxy[4 * std::size_t(order[p]) + k];

    device_buffers d;
    if (cudaMalloc(&d.boxes, sorted.size() * sizeof(T) + 1) != cudaSuccess ||
        cudaMalloc(&d.masks, snip::nms_mask_words(n) * sizeof(std::uint64_t) + 8) != cudaSuccess ||
        cudaMemcpy(d.boxes, sorted.data(), sorted.size() * sizeof(T), cudaMemcpyHostToDevice) !=
            cudaSuccess)
        return 2;
    std::vector<std::int64_t> pos;
    const cudaError_t err =
        snip::cuda::nms_sorted(static_cast<const T*>(d.boxes), n, thr, d.masks, pos, nullptr, opt);
    if (err != cudaSuccess) {
        std::printf("CUDA error: %s\n", cudaGetErrorString(err));
        return 2;
    }
    std::vector<std::int64_t> gpu;
    for (auto p : pos) gpu.push_back(order[std::size_t(p)]);
    if (gpu != cpu) {
        std::printf("MISMATCH %s n=%d seed=%llu thr=%g max_out=%zu: cpu keeps %zu, gpu %zu\n",
                    sizeof(T) == 4 ? "float" : "double", n, (unsigned long long)seed, thr,
                    max_out, cpu.size(), gpu.size());
        return 1;
    }
    return 0;
}

} // namespace

int main() {
    if (snip_cuda_test::skip_without_device("the NMS kernel was"))
        return snip_cuda_test::skip_code;
    int runs = 0, bad = 0, errors = 0;
    for (std::uint64_t seed = 1; seed <= 3; ++seed)
        for (int n : {1, 63, 64, 65, 1000, 5000})
            for (double thr : {0.0, 0.3, 0.5, 0.7})
                for (auto conv : {snip::pixel_convention::continuous, snip::pixel_convention::inclusive})
                    for (int type = 0; type < 2; ++type) {
                        const std::size_t max_out = seed == 3 ? 50 : snip::nms_unlimited;
                        const int r = type == 0 ? compare<float>(seed, n, thr, max_out, conv)
                                                : compare<double>(seed, n, thr, max_out, conv);
                        ++runs;
                        bad += r == 1;
                        errors += r == 2;
                        if (r == 2) break;
                    }
    std::printf("%d of %d GPU NMS runs differ from the CPU, %d CUDA errors\n", bad, runs, errors);
    return bad || errors ? 1 : 0;
}
