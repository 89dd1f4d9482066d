// Runs the CUDA IoU kernel and compares it with the CPU maths. Built whenever CUDA is
// enabled (so the kernels never rot); skipped with a message when no GPU is present.
#include <snip/cuda/iou.cuh>

#include "cuda_test_util.cuh"

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
    if (snip_cuda_test::skip_without_device("the kernel was")) return snip_cuda_test::skip_code;
    std::vector<float> a = {0, 0, 10, 10, 5, 5, 15, 15, 100, 100, 101, 130};
    std::vector<float> b = {0, 0, 10, 10, 0, 0, 20, 20};
    const int na = 3, nb = 2;
    float *da = nullptr, *db = nullptr, *dout = nullptr;
    cudaMalloc(&da, a.size() * sizeof(float));
    cudaMalloc(&db, b.size() * sizeof(float));
    cudaMalloc(&dout, na * nb * sizeof(float));
    cudaMemcpy(da, a.data(), a.size() * sizeof(float), cudaMemcpyHostToDevice);
    cudaMemcpy(db, b.data(), b.size() * sizeof(float), cudaMemcpyHostToDevice);
    if (snip::cuda::iou_matrix(da, na, db, nb, dout) != cudaSuccess) return 1;
    std::vector<float> out(na * nb);
    cudaMemcpy(out.data(), dout, out.size() * sizeof(float), cudaMemcpyDeviceToHost);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dout);
    int bad = 0;
    for (int i = 0; i < na; ++i)
        for (int j = 0; j < nb; ++j) {
            const snip::box<float> x{a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]};
            const snip::box<float> y{b[4 * j], b[4 * j + 1], b[4 * j + 2], b[4 * j + 3]};
            if (std::fabs(snip::iou(x, y) - out[i * nb + j]) > 1e-6f) ++bad;
        }
    std::printf("%d of %d IoU values differ from the CPU\n", bad, na * nb);
    return bad ? 1 : 0;
}
