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
if(NOT DEFINED CMAKE_CUDA_RUNTIME_LIBRARY)
  # The shared libcudart for every target made from here on, as CUDA::cudart and LibTorch
  # use (nvcc's default, the static one, would put both runtimes on the link lines).
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
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

# The RoIAlign / RoIPool, NMS and IoU-matrix launchers compiled once by nvcc for float and
# double (src/cuda/launchers.cu, declared in include/snip/cuda/launchers.hpp without any CUDA
# header), so that host-compiled code - snip::torch's ops above all - calls the kernels
# without nvcc. Header-only CPU users never compile it; CUDA users link
# snip::cuda_launchers (installed as a static library).
add_library(snip_cuda_launchers STATIC ${PROJECT_SOURCE_DIR}/src/cuda/launchers.cu)
add_library(snip::cuda_launchers ALIAS snip_cuda_launchers)
set_target_properties(snip_cuda_launchers PROPERTIES
  EXPORT_NAME cuda_launchers
  POSITION_INDEPENDENT_CODE ON)  # may end up in a shared library (a LibTorch extension)
# Consumers compile only launchers.hpp (C++20, host compiler) and link libcudart.
target_link_libraries(snip_cuda_launchers PUBLIC snip PRIVATE snip_cuda)
if(CMAKE_CUDA_COMPILER_ID STREQUAL "NVIDIA")
  # snip_warnings' flags are the host compiler's; nvcc takes them through -Xcompiler.
  target_compile_options(snip_cuda_launchers PRIVATE -Xcompiler=-Wall,-Wextra)
  if(SNIP_WARNINGS_AS_ERRORS)
    target_compile_options(snip_cuda_launchers PRIVATE -Werror=all-warnings -Xcompiler=-Werror)
  endif()
endif()
