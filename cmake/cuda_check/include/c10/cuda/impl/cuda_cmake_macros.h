// Shim for the compile-only check of include/snip/torch/ops.hpp's SNIP_TORCH_CUDA branch
// (tests/cuda/check_torch_ops_cuda.cpp) ONLY: Debian's CPU-only libtorch-dev ships the c10/cuda
// headers but not this file, which a CUDA build of LibTorch generates from
// c10/cuda/impl/cuda_cmake_macros.h.in. The content is that of a shared-library build. Never
// put this folder on the include path of anything that runs or links against LibTorch.
#pragma once

#define C10_CUDA_BUILD_SHARED_LIBS
