# CUDA support: kernels in include/snip/cuda/*.cuh share their maths (SNIP_HD
# functions) with the CPU path. Included from the top-level CMakeLists when
# SNIP_ENABLE_CUDA is ON.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  # Explicit list: never "native" (CI machines have no GPU).
  set(CMAKE_CUDA_ARCHITECTURES 75 80 86 89 90)
endif()
if(CMAKE_VERSION VERSION_LESS 3.26)
  # CMake 3.25 does not know nvcc's C++20 flag.
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()
if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
if(CMAKE_VERSION VERSION_LESS 3.26)
  list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
endif()
add_library(snip_cuda INTERFACE)
add_library(snip::cuda ALIAS snip_cuda)
set_target_properties(snip_cuda PROPERTIES EXPORT_NAME cuda)
target_link_libraries(snip_cuda INTERFACE snip CUDA::cudart)
target_compile_features(snip_cuda INTERFACE cuda_std_20)
