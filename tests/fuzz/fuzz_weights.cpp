// Fuzzer of the .snipw weights reader: bytes -> a file -> snip::train::read_weights
// (trainer/src/weights.cpp compiled into this program, instrumented; LibTorch is not).
// read_weights reads from a path only, so each input is written to one temporary file of
// this process first. Every input must be read or refused with a snip::error naming the
// file. A file it reads must hold what the format says (names unique and 1..4096 bytes,
// rank <= 8, contiguous CPU tensors of the listed dtypes whose data add up to the file) and
// must be written back byte for byte by write_weights.
#include "fuzz_util.hpp"

#include <snip/train/weights.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;

/// This process's scratch files, removed at exit.
struct scratch {
    std::string input, output;
    scratch() {
        const fs::path dir = fs::temp_directory_path();
        const std::string stem = "snip_fuzz_weights." + std::to_string(::getpid());
        input = (dir / (stem + ".snipw")).string();
        output = (dir / (stem + ".out.snipw")).string();
    }
    ~scratch() {
        std::error_code ec;
        fs::remove(input, ec);
        fs::remove(output, ec);
    }
};

const scratch& files() {
    static const scratch s;
    return s;
}

void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) fuzz::violation("cannot create the scratch file ", path);
    const bool ok = (size == 0 || std::fwrite(data, 1, size, f) == size);
    if (std::fclose(f) != 0 || !ok) fuzz::violation("cannot write the scratch file ", path);
}

std::vector<std::uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const scratch& f = files();
    write_file(f.input, data, size);

    snip::train::named_tensors tensors;
    if (!fuzz::accepts([&] { tensors = snip::train::read_weights(f.input); }, f.input)) return 0;

    std::set<std::string> names;
    std::uint64_t data_bytes = 0, header_bytes = 6 + 4;
    for (const auto& [name, t] : tensors) {
        fuzz::expect(!name.empty() && name.size() <= snip::train::detail::max_name_len, "name of ",
                     name.size(), " bytes");
        fuzz::expect(names.insert(name).second, "duplicate name '", name, "'");
        fuzz::expect(t.defined() && t.device().is_cpu() && t.is_contiguous(), name,
                     ": not a contiguous CPU tensor");
        fuzz::expect(t.dim() <= snip::train::detail::max_rank, name, ": rank ", t.dim());
        bool listed = false;
        for (const auto& e : snip::train::detail::weight_dtypes)
            listed = listed || e.type == t.scalar_type();
        fuzz::expect(listed, name, ": dtype ", c10::toString(t.scalar_type()));
        header_bytes += 4 + name.size() + 1 + 1 + 8 * std::uint64_t(t.dim());
        data_bytes += std::uint64_t(t.nbytes());
    }
    fuzz::expect(header_bytes + data_bytes == size, "the tensors account for ",
                 header_bytes + data_bytes, " bytes of a ", size, "-byte file");

    // What read_weights accepts, write_weights writes back unchanged.
    const bool wrote =
        fuzz::accepts([&] { snip::train::write_weights(f.output, tensors); }, f.output);
    fuzz::expect(wrote, "write_weights refused what read_weights returned");
    const std::vector<std::uint8_t> again = read_file(f.output);
    fuzz::expect(again.size() == size && std::equal(again.begin(), again.end(), data),
                 "write_weights wrote ", again.size(), " bytes that differ from the ", size,
                 " read");
    return 0;
}
