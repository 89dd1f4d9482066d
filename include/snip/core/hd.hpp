// snip: SNIP/SNIPER multi-scale training primitives.
// core/hd.hpp: SNIP_HD marks the maths shared by the CPU paths and the CUDA kernels.
#pragma once

/// Marks a function usable on the host and, when compiled by nvcc, on the device.
#if defined(__CUDACC__) || defined(__HIPCC__)
#define SNIP_HD __host__ __device__
#else
#define SNIP_HD
#endif
