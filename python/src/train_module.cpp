// train_module.cpp: the module snip._train, bindings of the LibTorch trainer library
// (snip::trainer) for Python. For now: the embedded synthetic dataset of
// snip/train/synthetic.hpp, written to a folder as PNG images and a COCO file.
//
// The module links LibTorch (through snip::trainer) as a shared library: the same
// libtorch_cpu.so that `import torch` loads, so the two can live in one process in
// either import order.
#include "common.hpp"

#include <snip/train/synthetic.hpp>

#include <pybind11/stl/filesystem.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace {

namespace pyb = pybind11;
using namespace pyb::literals;

std::string write_synthetic(const std::filesystem::path& folder, int images, std::uint64_t seed,
                            int classes, int min_side, int max_side, int min_objects,
                            int max_objects, double min_object, double max_object_fraction,
                            double crowd_fraction) {
    snip::train::synthetic_options o;
    o.images = images;
    o.seed = seed;
    o.classes = classes;
    o.min_side = min_side;
    o.max_side = max_side;
    o.min_objects = min_objects;
    o.max_objects = max_objects;
    o.min_object = min_object;
    o.max_object_fraction = max_object_fraction;
    o.crowd_fraction = crowd_fraction;
    const std::string dir = folder.string();
    {
        snip::py::release_gil nogil;
        const snip::train::synthetic_set s = snip::train::make_synthetic(o);
        snip::train::write_synthetic(s, dir);
    }
    return (folder / "annotations.json").string();
}

} // namespace

PYBIND11_MODULE(_train, m) {
    m.doc() = "snip's LibTorch trainer library (snip::trainer) from Python: the embedded "
              "synthetic detection dataset.";
    snip::py::register_errors(m, /*owner=*/false);

    pyb::list names;
    for (const char* n : snip::train::synthetic_class_names) names.append(n);
    m.attr("synthetic_class_names") = pyb::tuple(names);

    m.def("write_synthetic", &write_synthetic, "folder"_a, "images"_a = 64, "seed"_a = 1,
          "classes"_a = 3, "min_side"_a = 320, "max_side"_a = 640, "min_objects"_a = 1,
          "max_objects"_a = 6, "min_object"_a = 8.0, "max_object_fraction"_a = 0.6,
          "crowd_fraction"_a = 0.0,
          R"doc(Generates snip's synthetic multi-scale detection set and writes it to `folder`.

The folder (created when missing) receives one PNG per image (synth_000001.png, ...) and
annotations.json (COCO: image ids 1..images, category ids 1..classes named disc, square,
triangle, diamond, cross, ring; boxes in original pixels, continuous convention). Each
image is width x height with both sides drawn in [min_side, max_side]; it holds
min_objects..max_objects flat-coloured shapes whose sides run log-uniformly from
min_object px to max_object_fraction x the shorter image side; a share crowd_fraction of
them is flagged iscrowd. Deterministic: the same arguments give the same files, byte for
byte. The GIL is released while the set is generated and written.

Returns the path of annotations.json. Raises snip.Error naming the option for impossible
options and naming the path when a file cannot be written.)doc");
}
