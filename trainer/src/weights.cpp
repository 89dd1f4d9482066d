// weights.cpp: the SNIPW1 weight files (declared in snip/train/weights.hpp).
#include <snip/train/weights.hpp>

#include <algorithm>
#include <cstdint>

namespace snip::train {

namespace detail {

std::string sizes_str(at::IntArrayRef sizes) {
    std::string s = "[";
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        if (i) s += ',';
        s += std::to_string(sizes[i]);
    }
    return s + "]";
}

std::string names_str(const std::vector<std::string>& names, std::size_t max_shown) {
    std::string s;
    for (std::size_t i = 0; i < names.size() && i < max_shown; ++i)
        s += (i ? ", " : "") + names[i];
    if (names.size() > max_shown)
        s += ", ... (" + std::to_string(names.size() - max_shown) + " more)";
    return s;
}

weight_reader::weight_reader(const std::string& path) : path_(path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) snip::fail("read_weights: cannot open ", path, ": ", ec.message());
    size_ = static_cast<std::uint64_t>(size);
    in_.open(path, std::ios::binary);
    if (!in_) snip::fail("read_weights: cannot open ", path);
}

void weight_reader::read(void* dst, std::uint64_t n, const std::string& what) {
    if (n > remaining())
        snip::fail("read_weights: ", path_, ": truncated file: ", what, " needs ", n,
                   " bytes at offset ", offset_, ", only ", remaining(), " left");
    in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (!in_ || static_cast<std::uint64_t>(in_.gcount()) != n)
        snip::fail("read_weights: ", path_, ": read error in ", what, " at offset ", offset_);
    offset_ += n;
}

} // namespace detail

named_tensors read_weights(const std::string& path) {
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
        // LibTorch counts elements and strides in int64: the product of the sizes, a zero
        // counted as one, must fit, even for a tensor without data. (LibTorch 1.13's
        // torch::empty throws c10::Error for [2^40, 2^40, 0], found by tests/fuzz/fuzz_weights,
        // and makes [0, 2^40, 2^40] with a wrapped stride.)
        std::uint64_t span = 1;
        for (const std::int64_t s : sizes) {
            const auto u = static_cast<std::uint64_t>(std::max<std::int64_t>(s, 1));
            if (span > static_cast<std::uint64_t>(INT64_MAX) / u)
                snip::fail("read_weights: ", path, ": ", name, ": shape ", detail::sizes_str(sizes),
                           " has more elements than a tensor can index (the product of its "
                           "sizes, zeros counted as ones, is above 2^63 - 1)");
            span *= u;
        }
        // The data's byte count, or "more than the file holds" (which also avoids overflow).
        bool empty = false;
        for (const std::int64_t s : sizes)
            empty = empty || s == 0;
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
                       too_big ? std::string("more") : std::to_string(bytes), " bytes at offset ",
                       r.offset(), ", only ", r.remaining(), " left");
        torch::Tensor t = torch::empty(sizes, torch::TensorOptions().dtype(dt->type));
        if (bytes) r.read(t.data_ptr(), bytes, "the data of " + who);
        out.emplace_back(name, std::move(t));
    }
    if (r.remaining() != 0)
        snip::fail("read_weights: ", path, ": ", r.remaining(),
                   " trailing bytes after the last of ", count, " tensors (corrupt file?)");
    return out;
}

void write_weights(const std::string& path, const named_tensors& tensors) {
    std::set<std::string> seen;
    for (const auto& [name, t] : tensors) {
        snip::require(!name.empty() && name.size() <= detail::max_name_len, "write_weights: ", path,
                      ": tensor name length must be in [1, ", detail::max_name_len, "], got ",
                      name.size(), " ('", name.substr(0, 64), "')");
        snip::require(seen.insert(name).second, "write_weights: ", path,
                      ": duplicate tensor name '", name, "'");
        snip::require(t.defined(), "write_weights: ", path, ": ", name, " is undefined");
        snip::require(t.dim() <= detail::max_rank, "write_weights: ", path, ": ", name, ": rank ",
                      t.dim(), " is above ", static_cast<int>(detail::max_rank));
        bool known = false;
        for (const auto& e : detail::weight_dtypes)
            known = known || e.type == t.scalar_type();
        snip::require(known, "write_weights: ", path, ": ", name, ": dtype ",
                      c10::toString(t.scalar_type()), " is not supported by the .snipw format");
    }
    snip::require(tensors.size() <= UINT32_MAX, "write_weights: ", path, ": too many tensors");

    static std::atomic<unsigned> counter{0};
    const std::string tmp =
        path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
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
            for (const std::int64_t s : t.sizes())
                put(out, &s, sizeof s);
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

named_tensors module_tensors(const torch::nn::Module& module) {
    named_tensors out;
    for (const auto& item : module.named_parameters(/*recurse=*/true))
        out.emplace_back(item.key(), item.value());
    for (const auto& item : module.named_buffers(/*recurse=*/true))
        out.emplace_back(item.key(), item.value());
    return out;
}

void save_weights(const torch::nn::Module& module, const std::string& path) {
    write_weights(path, module_tensors(module));
}

load_report load_weights(torch::nn::Module& module, const std::string& path, bool strict,
                         const std::vector<std::string>& tolerated,
                         const std::vector<std::string>& optional) {
    const named_tensors file = read_weights(path);
    std::map<std::string, const torch::Tensor*> by_name;
    for (const auto& [name, t] : file)
        by_name.emplace(name, &t);
    const named_tensors model = module_tensors(module);
    const std::string where = "load_weights(" + path + "): ";

    load_report report;
    std::vector<std::string> missing;
    std::set<std::string> model_names;
    for (const auto& [name, dst] : model) {
        model_names.insert(name);
        const auto it = by_name.find(name);
        if (it == by_name.end()) {
            if (std::find(optional.begin(), optional.end(), name) != optional.end())
                report.kept.push_back(name);
            else
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
    std::vector<std::string> refused;
    for (const auto& n : report.unexpected)
        if (std::find(tolerated.begin(), tolerated.end(), n) == tolerated.end()) refused.push_back(n);
    if (strict && !refused.empty())
        snip::fail(where, refused.size(), refused.size() == 1 ? " tensor" : " tensors",
                   " in the file ", refused.size() == 1 ? "is" : "are",
                   " not in the model (strict): ", detail::names_str(refused));

    torch::NoGradGuard no_grad;
    for (const auto& [name, dst] : model) {
        const auto it = by_name.find(name);
        if (it == by_name.end()) continue; // an optional tensor the file lacks
        torch::Tensor d = dst; // shares the module's storage
        d.copy_(*it->second);
        report.loaded.push_back(name);
    }
    return report;
}

} // namespace snip::train
