// weights.hpp: named tensors in a small binary file (.snipw) that C++ reads without Python,
// and loading/saving a torch::nn::Module's parameters and buffers by name.
//
// @code
//   #include <snip/train/weights.hpp>
//   // made by: /usr/bin/python3 export_torchvision_resnet.py --arch resnet101
//   //              --from-checkpoint resnet101-63fe2227.pth --out resnet101.snipw
//   snip::train::ResNet net(snip::train::resnet_options{});
//   snip::train::load_report r = snip::train::load_weights(*net, "resnet101.snipw", /*strict=*/false);
//   // r.unexpected == {"fc.weight", "fc.bias"}: the backbone has no classifier
//   snip::train::save_weights(*net, "run/backbone.snipw");    // atomic: temp file + rename
// @endcode
//
// File format "SNIPW1" (all integers little-endian; no padding, no alignment):
//   magic    6 bytes  "SNIPW1"
//   count    u32      number of tensors
//   count times:
//     name_len u32    1..4096
//     name     name_len bytes (UTF-8, no terminator), unique in the file
//     dtype    u8     0 float32, 1 float64, 2 float16, 3 bfloat16, 4 int64, 5 int32,
//                     6 int16, 7 int8, 8 uint8, 9 bool
//     rank     u8     0..8
//     sizes    rank x i64, each >= 0
//     data     prod(sizes) x element size bytes, row-major (C-contiguous), little-endian
//   end of file right after the last tensor (trailing bytes are an error).
// Writers: write_weights / save_weights here, and export_torchvision_resnet.py.
//
// Loading (load_weights). The model's tensors are its named parameters and buffers, named as
// a PyTorch state_dict ("layer1.0.conv1.weight"). Every one must be in the file with the same
// shape, else snip::error naming the file and the tensor:
//   "load_weights(r50.snipw): layer1.0.conv1.weight: file has [64,64,3,3], model expects [64,64,1,1]"
//   "load_weights(r50.snipw): 2 tensors of the model are missing from the file: fc.weight, fc.bias"
// Names in the file that the model lacks are an error when `strict`, otherwise reported in
// load_report::unexpected. "*.num_batches_tracked" (BatchNorm's step counter, which
// FrozenBatchNorm2d does not keep) is always skipped when the model lacks it (reported in
// load_report::ignored). Values are converted to the model tensor's dtype and device
// (a float64 file loads into a float32 model), but floating point never converts to an
// integer type or back. Everything is checked before anything is assigned: a failed load
// leaves the module unchanged. Assignment copies in place (no autograd), so existing
// references (an optimizer's) stay valid and requires_grad is unchanged.
//
// Errors while reading name the file and the first thing wrong: a missing file, a bad magic,
// a truncated file (which field of which tensor, how many bytes were needed and how many were
// left), an unknown dtype code, a rank above 8, a negative size, a duplicate name, trailing
// bytes. Big-endian hosts are not supported (a static_assert says so).
#pragma once

#include <snip/core/error.hpp>

#include <torch/nn/module.h>

#include <ATen/ATen.h>
#include <c10/util/Half.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

namespace snip::train {

static_assert(std::endian::native == std::endian::little,
              "weights.hpp: the .snipw format is little-endian; big-endian hosts are not supported");

/// @brief Tensors in file order, each with its name.
using named_tensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// @brief What load_weights did.
struct load_report {
    std::vector<std::string> loaded;     ///< model tensors assigned from the file
    std::vector<std::string> unexpected; ///< file tensors the model lacks (strict == false)
    std::vector<std::string> ignored;    ///< "*.num_batches_tracked" the model lacks
    std::vector<std::string> kept;       ///< `optional` model tensors the file lacks (unchanged)
};

namespace detail {

inline constexpr char weights_magic[6] = {'S', 'N', 'I', 'P', 'W', '1'};
inline constexpr std::uint32_t max_name_len = 4096;
inline constexpr std::uint8_t max_rank = 8;

struct dtype_entry {
    std::uint8_t code;
    c10::ScalarType type;
    const char* name;
};
inline constexpr dtype_entry weight_dtypes[] = {
    {0, c10::ScalarType::Float, "float32"},   {1, c10::ScalarType::Double, "float64"},
    {2, c10::ScalarType::Half, "float16"},    {3, c10::ScalarType::BFloat16, "bfloat16"},
    {4, c10::ScalarType::Long, "int64"},      {5, c10::ScalarType::Int, "int32"},
    {6, c10::ScalarType::Short, "int16"},     {7, c10::ScalarType::Char, "int8"},
    {8, c10::ScalarType::Byte, "uint8"},      {9, c10::ScalarType::Bool, "bool"},
};

/// "[64,64,3,3]"
std::string sizes_str(at::IntArrayRef sizes);

std::string names_str(const std::vector<std::string>& names, std::size_t max_shown = 10);

/// Reads fields from an open file, tracking the offset, failing with the file's name and the
/// field on a short read.
class weight_reader {
public:
    explicit weight_reader(const std::string& path);

    std::uint64_t remaining() const { return size_ - offset_; }
    std::uint64_t offset() const { return offset_; }

    void read(void* dst, std::uint64_t n, const std::string& what);

    template <class T>
    T get(const std::string& what) {
        T v{};
        read(&v, sizeof v, what);
        return v;
    }

    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::ifstream in_;
    std::uint64_t size_ = 0, offset_ = 0;
};

} // namespace detail

/// @brief The tensors of a .snipw file, in file order (CPU, contiguous).
/// @throws snip::error naming the file and what is wrong (see the header comment).
named_tensors read_weights(const std::string& path);

/// @brief Writes `tensors` to `path` as a .snipw file, atomically: a temporary file in the
/// same folder, renamed over `path` once complete (readers never see a partial file).
/// Tensors may be on any device, of any strides; they are copied to contiguous CPU memory.
/// @throws snip::error on an empty or duplicate name, an unsupported dtype or an I/O error.
void write_weights(const std::string& path, const named_tensors& tensors);

/// @brief The module's parameters then buffers, named as a PyTorch state_dict. The tensors
/// share storage with the module.
named_tensors module_tensors(const torch::nn::Module& module);

/// @brief Saves the module's parameters and buffers to `path` (.snipw, atomic).
void save_weights(const torch::nn::Module& module, const std::string& path);

/// @brief Assigns the tensors of the .snipw file `path` to the module's parameters and
/// buffers by name (see the header comment for the rules and the errors). `tolerated`:
/// names the file may hold beyond the model even when `strict` (reported in
/// load_report::unexpected), such as an ImageNet file's classifier "fc.weight", "fc.bias"
/// that a detector's backbone lacks. `optional`: model tensors the file may lack; they keep
/// their values (reported in load_report::kept), such as the zero-initialised offset convs
/// of a deformable res5 ("layer4.0.conv2.offset.weight") that ImageNet files do not have.
load_report load_weights(torch::nn::Module& module, const std::string& path,
                         bool strict = true, const std::vector<std::string>& tolerated = {},
                         const std::vector<std::string>& optional = {});

} // namespace snip::train
