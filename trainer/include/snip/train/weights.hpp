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
inline std::string sizes_str(at::IntArrayRef sizes) {
    std::string s = "[";
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        if (i) s += ',';
        s += std::to_string(sizes[i]);
    }
    return s + "]";
}

inline std::string names_str(const std::vector<std::string>& names, std::size_t max_shown = 10) {
    std::string s;
    for (std::size_t i = 0; i < names.size() && i < max_shown; ++i) s += (i ? ", " : "") + names[i];
    if (names.size() > max_shown) s += ", ... (" + std::to_string(names.size() - max_shown) + " more)";
    return s;
}

/// Reads fields from an open file, tracking the offset, failing with the file's name and the
/// field on a short read.
class weight_reader {
public:
    explicit weight_reader(const std::string& path) : path_(path) {
        std::error_code ec;
        const auto size = std::filesystem::file_size(path, ec);
        if (ec) snip::fail("read_weights: cannot open ", path, ": ", ec.message());
        size_ = static_cast<std::uint64_t>(size);
        in_.open(path, std::ios::binary);
        if (!in_) snip::fail("read_weights: cannot open ", path);
    }

    std::uint64_t remaining() const { return size_ - offset_; }
    std::uint64_t offset() const { return offset_; }

    void read(void* dst, std::uint64_t n, const std::string& what) {
        if (n > remaining())
            snip::fail("read_weights: ", path_, ": truncated file: ", what, " needs ", n,
                       " bytes at offset ", offset_, ", only ", remaining(), " left");
        in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
        if (!in_ || static_cast<std::uint64_t>(in_.gcount()) != n)
            snip::fail("read_weights: ", path_, ": read error in ", what, " at offset ", offset_);
        offset_ += n;
    }

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
inline named_tensors read_weights(const std::string& path) {
    detail::weight_reader r(path);
    char magic[sizeof detail::weights_magic] = {};
    if (r.remaining() < sizeof magic)
        snip::fail("read_weights: ", path, ": not a .snipw file (", r.remaining(),
                   " bytes, shorter than the magic \"SNIPW1\")");
    r.read(magic, sizeof magic, "the magic");
    if (std::string_view(magic, sizeof magic) !=
        std::string_view(detail::weights_magic, sizeof magic))
        snip::fail("read_weights: ", path, ": bad magic (not a .snipw file): expected \"SNIPW1\"");
    const auto count = r.get<std::uint32_t>("the tensor count");

    named_tensors out;
    std::set<std::string> seen;
    for (std::uint32_t i = 0; i < count; ++i) {
        const std::string tensor = "tensor " + std::to_string(i) + " of " + std::to_string(count);
        const auto name_len = r.get<std::uint32_t>("the name length of " + tensor);
        if (name_len == 0 || name_len > detail::max_name_len)
            snip::fail("read_weights: ", path, ": ", tensor, ": name length ", name_len,
                       " is not in [1, ", detail::max_name_len, "]");
        std::string name(name_len, '\0');
        r.read(name.data(), name_len, "the name of " + tensor);
        const std::string who = tensor + " ('" + name + "')";
        if (!seen.insert(name).second)
            snip::fail("read_weights: ", path, ": duplicate tensor name '", name, "'");

        const auto code = r.get<std::uint8_t>("the dtype of " + who);
        const detail::dtype_entry* dt = nullptr;
        for (const auto& e : detail::weight_dtypes)
            if (e.code == code) dt = &e;
        if (!dt)
            snip::fail("read_weights: ", path, ": ", name, ": unknown dtype code ",
                       static_cast<int>(code), " (0..9 are defined)");
        const auto rank = r.get<std::uint8_t>("the rank of " + who);
        if (rank > detail::max_rank)
            snip::fail("read_weights: ", path, ": ", name, ": rank ", static_cast<int>(rank),
                       " is above ", static_cast<int>(detail::max_rank));
        std::vector<std::int64_t> sizes(rank);
        for (std::uint8_t d = 0; d < rank; ++d) {
            sizes[d] = r.get<std::int64_t>("the sizes of " + who);
            if (sizes[d] < 0)
                snip::fail("read_weights: ", path, ": ", name, ": negative size ", sizes[d],
                           " in dimension ", static_cast<int>(d));
        }
        // The data's byte count, or "more than the file holds" (which also avoids overflow).
        bool empty = false;
        for (const std::int64_t s : sizes) empty = empty || s == 0;
        std::uint64_t bytes = empty ? 0 : c10::elementSize(dt->type);
        bool too_big = false; // the product overflows 64 bits
        for (const std::int64_t s : sizes) {
            if (empty) break;
            const auto u = static_cast<std::uint64_t>(s);
            if (bytes > UINT64_MAX / u) {
                too_big = true;
                break;
            }
            bytes *= u;
        }
        if (too_big || bytes > r.remaining())
            snip::fail("read_weights: ", path, ": truncated file: the data of ", who, " (",
                       dt->name, " ", detail::sizes_str(sizes), ") needs ",
                       too_big ? std::string("more") : std::to_string(bytes),
                       " bytes at offset ", r.offset(), ", only ", r.remaining(), " left");
        torch::Tensor t = torch::empty(sizes, torch::TensorOptions().dtype(dt->type));
        if (bytes) r.read(t.data_ptr(), bytes, "the data of " + who);
        out.emplace_back(name, std::move(t));
    }
    if (r.remaining() != 0)
        snip::fail("read_weights: ", path, ": ", r.remaining(),
                   " trailing bytes after the last of ", count, " tensors (corrupt file?)");
    return out;
}

/// @brief Writes `tensors` to `path` as a .snipw file, atomically: a temporary file in the
/// same folder, renamed over `path` once complete (readers never see a partial file).
/// Tensors may be on any device, of any strides; they are copied to contiguous CPU memory.
/// @throws snip::error on an empty or duplicate name, an unsupported dtype or an I/O error.
inline void write_weights(const std::string& path, const named_tensors& tensors) {
    std::set<std::string> seen;
    for (const auto& [name, t] : tensors) {
        snip::require(!name.empty() && name.size() <= detail::max_name_len, "write_weights: ",
                      path, ": tensor name length must be in [1, ", detail::max_name_len,
                      "], got ", name.size(), " ('", name.substr(0, 64), "')");
        snip::require(seen.insert(name).second, "write_weights: ", path,
                      ": duplicate tensor name '", name, "'");
        snip::require(t.defined(), "write_weights: ", path, ": ", name, " is undefined");
        snip::require(t.dim() <= detail::max_rank, "write_weights: ", path, ": ", name,
                      ": rank ", t.dim(), " is above ", static_cast<int>(detail::max_rank));
        bool known = false;
        for (const auto& e : detail::weight_dtypes) known = known || e.type == t.scalar_type();
        snip::require(known, "write_weights: ", path, ": ", name, ": dtype ",
                      c10::toString(t.scalar_type()), " is not supported by the .snipw format");
    }
    snip::require(tensors.size() <= UINT32_MAX, "write_weights: ", path, ": too many tensors");

    static std::atomic<unsigned> counter{0};
    const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
                            std::to_string(counter.fetch_add(1));
    auto put = [](std::ofstream& out, const void* p, std::size_t n) {
        out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
    };
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) snip::fail("write_weights: cannot create ", tmp);
        put(out, detail::weights_magic, sizeof detail::weights_magic);
        const auto count = static_cast<std::uint32_t>(tensors.size());
        put(out, &count, sizeof count);
        for (const auto& [name, t0] : tensors) {
            const torch::Tensor t = t0.detach().to(torch::kCPU).contiguous();
            const auto len = static_cast<std::uint32_t>(name.size());
            put(out, &len, sizeof len);
            put(out, name.data(), name.size());
            std::uint8_t code = 0;
            for (const auto& e : detail::weight_dtypes)
                if (e.type == t.scalar_type()) code = e.code;
            put(out, &code, 1);
            const auto rank = static_cast<std::uint8_t>(t.dim());
            put(out, &rank, 1);
            for (const std::int64_t s : t.sizes()) put(out, &s, sizeof s);
            if (t.numel()) put(out, t.data_ptr(), t.nbytes());
        }
        out.flush();
        if (!out) {
            out.close();
            std::error_code ec;
            std::filesystem::remove(tmp, ec);
            snip::fail("write_weights: error writing ", tmp, " (disk full?)");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::error_code ec2;
        std::filesystem::remove(tmp, ec2);
        snip::fail("write_weights: cannot rename ", tmp, " to ", path, ": ", ec.message());
    }
}

/// @brief The module's parameters then buffers, named as a PyTorch state_dict. The tensors
/// share storage with the module.
inline named_tensors module_tensors(const torch::nn::Module& module) {
    named_tensors out;
    for (const auto& item : module.named_parameters(/*recurse=*/true))
        out.emplace_back(item.key(), item.value());
    for (const auto& item : module.named_buffers(/*recurse=*/true))
        out.emplace_back(item.key(), item.value());
    return out;
}

/// @brief Saves the module's parameters and buffers to `path` (.snipw, atomic).
inline void save_weights(const torch::nn::Module& module, const std::string& path) {
    write_weights(path, module_tensors(module));
}

/// @brief Assigns the tensors of the .snipw file `path` to the module's parameters and
/// buffers by name (see the header comment for the rules and the errors).
inline load_report load_weights(torch::nn::Module& module, const std::string& path,
                                bool strict = true) {
    const named_tensors file = read_weights(path);
    std::map<std::string, const torch::Tensor*> by_name;
    for (const auto& [name, t] : file) by_name.emplace(name, &t);
    const named_tensors model = module_tensors(module);
    const std::string where = "load_weights(" + path + "): ";

    load_report report;
    std::vector<std::string> missing;
    std::set<std::string> model_names;
    for (const auto& [name, dst] : model) {
        model_names.insert(name);
        const auto it = by_name.find(name);
        if (it == by_name.end()) {
            missing.push_back(name);
            continue;
        }
        const torch::Tensor& src = *it->second;
        if (src.sizes() != dst.sizes())
            snip::fail(where, name, ": file has ", detail::sizes_str(src.sizes()),
                       ", model expects ", detail::sizes_str(dst.sizes()));
        const bool fsrc = at::isFloatingType(src.scalar_type());
        const bool fdst = at::isFloatingType(dst.scalar_type());
        if (fsrc != fdst)
            snip::fail(where, name, ": file has dtype ", c10::toString(src.scalar_type()),
                       ", model expects ", c10::toString(dst.scalar_type()),
                       " (no conversion between floating point and integer)");
    }
    if (!missing.empty())
        snip::fail(where, missing.size(), missing.size() == 1 ? " tensor" : " tensors",
                   " of the model ", missing.size() == 1 ? "is" : "are",
                   " missing from the file: ", detail::names_str(missing));
    for (const auto& [name, t] : file) {
        if (model_names.count(name)) continue;
        if (name == "num_batches_tracked" || name.ends_with(".num_batches_tracked"))
            report.ignored.push_back(name);
        else
            report.unexpected.push_back(name);
    }
    if (strict && !report.unexpected.empty())
        snip::fail(where, report.unexpected.size(),
                   report.unexpected.size() == 1 ? " tensor" : " tensors",
                   " in the file ", report.unexpected.size() == 1 ? "is" : "are",
                   " not in the model (strict): ", detail::names_str(report.unexpected));

    torch::NoGradGuard no_grad;
    for (const auto& [name, dst] : model) {
        torch::Tensor d = dst; // shares the module's storage
        d.copy_(*by_name.at(name));
        report.loaded.push_back(name);
    }
    return report;
}

} // namespace snip::train
